/**
 * The whole AnomalyNCD run (METHOD.md §0): MEBin → anomaly-centred crops → frozen
 * features and the k-means baseline → (K estimation) → mask-guided NCD
 * training → per-crop prediction → region merging → metrics.
 * @module
 */
import { estimateK, kmeans, type KScore } from '../analysis/cluster.js';
import { InvalidArgumentError } from '../core/errors.js';
import { defaulted, deviceField, int, intRange, num, precisionField, resolveOptions, str, threadsField, type DeviceRequest, type Field, type Precision } from '../core/options.js';
import { mergeRegions, argmax, regionWeights } from '../analysis/merge.js';
import { evaluate, type EvaluationResult } from '../analysis/metrics.js';
import { loadBackbone, type ArchSpec, type Backbone, type BackboneInfo, type VitConfig } from './model.js';
import { extractRegions, type Box, type ImageInput, type RegionsResult } from './regions.js';
import { fit, SEED_FIELD, type FitOptions, type LabelledCrop, type TrainedModel, type TrainEvent } from './train.js';
import { MEBIN_FIELDS, type MapInput, type MebinOptions } from './mebin.js';
import type { Progress } from '../core/jobs.js';

/** One image of a discovery run. */
export interface DiscoverItem {
  image: ImageInput;
  map: MapInput;
  /** The true defect type, when known (enables metrics). */
  label?: string;
  /** A readable unique name (default: the image path or its index). */
  name?: string;
}

/** Options of {@link discover}. */
export interface DiscoverOptions extends MebinOptions {
  /** Number of defect types (novel classes), or `'auto'` to estimate it (silhouette of k-means over the frozen features). */
  k: number | 'auto';
  /** Range searched by `k: 'auto'` (default [2, 10]). */
  kRange?: [number, number];
  /** DINO checkpoint; without it the ViT is randomly initialised (a warning says so). */
  backbone?: string;
  /** Architecture (default `dino_vitb8`). */
  arch?: ArchSpec;
  /** Labelled crops of known defect classes (D^l), e.g. from `loadLabelledFolder`. */
  labelled?: readonly LabelledCrop[];
  /** Training epochs (default 50). */
  epochs?: number;
  /** Seed of every random stream (default 3407). */
  seed?: number;
  /** Worker / libtorch threads (default: all cores). */
  threads?: number;
  /** Region-merging temperature (METHOD.md §7: 100 for MVTec AD, 50 otherwise; default 50). */
  tauAlpha?: number;
  /** Where MEBin, the backbone, training and prediction run (default `'auto'`; see `loadBackbone`). */
  device?: DeviceRequest;
  /** ViT precision for features, training and prediction: `'fp32'` (default) or `'bf16'`. */
  precision?: Precision;
  /** Further training options (batch size, learning rate, checkpointDir, ...). */
  training?: Omit<FitOptions, 'k' | 'backbone' | 'arch' | 'epochs' | 'seed' | 'threads' | 'signal' | 'onProgress' | 'searchRange' | 'device' | 'precision'>;
  signal?: AbortSignal;
  /** Stage progress (regions, features, training, predict). */
  onProgress?: (progress: Progress) => void;
  /** Every training batch / epoch event. */
  onTrainEvent?: (event: TrainEvent) => void;
}

/** One region of an image in the result. */
export interface DiscoveredRegion {
  box: Box;
  cluster: number;
  probability: number;
  maskArea: number;
  score: number;
}

/** One image in the result. */
export interface DiscoveredImage {
  name: string;
  label?: string;
  /** Image-level cluster (region-merged, METHOD.md §7). */
  cluster: number;
  /** Merged novel-class probabilities. */
  probabilities: number[];
  regions: DiscoveredRegion[];
  /** The k-means baseline's cluster for this image. */
  baselineCluster: number;
}

/** Result of {@link discover}. */
export interface DiscoverResult {
  images: DiscoveredImage[];
  k: number;
  /** How K was chosen, with the estimation curve for `'auto'`. */
  kChoice: { mode: 'given' | 'auto'; curve?: KScore[] };
  /** With labels: AnomalyNCD and the k-means baseline against the truth. */
  metrics?: { anomalyncd: EvaluationResult; kmeansBaseline: EvaluationResult };
  searchRange: [number, number];
  /** Per-stage wall time (ms). */
  timings: Record<string, number>;
  /** Where the model stages ran (`'cpu'` or `'cuda:N'`) and in which precision; MEBin's device is `regions.device`. */
  device: string;
  precision: Precision;
  warnings: string[];
  /** The trained model (call `dispose()` when done). */
  model: TrainedModel;
  /** Per crop (in image order): the image index, frozen and trained features (for plots). */
  crops: { image: number; frozen: Float32Array; trained: Float32Array; probabilities: Float32Array }[];
  /** The regions stage's own result (crops with pixels). */
  regions: RegionsResult;
  /** The backbone: its checkpoint (null: random init), architecture and where that came from. */
  backbone: { path: string | null; arch: VitConfig; archSource: BackboneInfo['archSource'] };
}

/** Per image: merged cluster and probabilities, and every region's own vote (crops in image order). */
function mergeImages(regions: RegionsResult, probabilities: readonly ArrayLike<number>[], tauAlpha: number): Omit<DiscoveredImage, 'name' | 'label' | 'baselineCluster'>[] {
  let next = 0;
  return regions.items.map((item) => {
    const mine = item.crops.map((crop) => ({ crop, p: probabilities[next++]! }));
    const merged = mergeRegions(mine.map(({ crop, p }) => ({ probabilities: p, maskArea: crop.maskArea })), tauAlpha);
    return {
      cluster: merged.cluster,
      probabilities: Array.from(merged.probabilities),
      regions: mine.map(({ crop, p }) => {
        const c = argmax(p);
        return { box: crop.box, cluster: c, probability: p[c]!, maskArea: crop.maskArea, score: crop.score };
      }),
    };
  });
}

/**
 * The region-merging temperature τα (METHOD §7): the reference uses 100 for MVTec AD and
 * 50 for every other dataset; 50 is the default here.
 */
const TAU_ALPHA_FIELD = defaulted(num({ min: 0, max: 1e9, gt: true, default: 50 }));

/** `k`: an integer number of novel classes, or 'auto'. */
const K_FIELD: Field<number | 'auto'> & { readonly required: true } = {
  required: true,
  check(v, name) {
    if (v !== 'auto' && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000))
      throw new InvalidArgumentError(`Option '${name}' must be an integer >= 1 or 'auto' (got ${JSON.stringify(v)})`);
    return v as number | 'auto';
  },
};

/** What `predict()` reads of its options, once (MEBin options as `binarize`). */
const PREDICT_IMAGES_FIELDS = {
  sampleRate: MEBIN_FIELDS.sampleRate,
  minIntervalLen: MEBIN_FIELDS.minIntervalLen,
  erode: MEBIN_FIELDS.erode,
  tauAlpha: TAU_ALPHA_FIELD,
  threads: defaulted(threadsField),
  device: deviceField,
  precision: precisionField,
} as const;

/** What `discover()` reads of its scalar options, once; objects (arch, labelled, training) are passed to the stage that validates them. */
const DISCOVER_FIELDS = {
  ...MEBIN_FIELDS,
  k: K_FIELD,
  kRange: intRange({ lo: 2, hi: 1000, allowEqual: true }),
  backbone: str(),
  epochs: int({ min: 1, max: 100000 }),
  seed: SEED_FIELD,
  threads: defaulted(threadsField),
  tauAlpha: TAU_ALPHA_FIELD,
  device: deviceField,
  precision: precisionField,
} as const;

/** Options of {@link predict}. */
export interface PredictImagesOptions extends Omit<MebinOptions, 'range'> {
  /** Region-merging temperature (default 50; 100 for MVTec AD). */
  tauAlpha?: number;
  threads?: number;
  /** MEBin's device (default `'auto'`); the model runs where it lives (`model.device`). */
  device?: DeviceRequest;
  /** ViT precision of the prediction (default `'fp32'`). */
  precision?: Precision;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

/** A prediction for one new image. */
export type PredictedImage = Omit<DiscoveredImage, 'name' | 'label' | 'baselineCluster'>;

/**
 * Classifies new images with a trained model: MEBin with the search range saved
 * at training time (METHOD.md T31: a new image alone would give a degenerate range),
 * crops, per-crop novel-class probabilities, region merging.
 */
export async function predict(model: TrainedModel, images: readonly ImageInput[], maps: readonly MapInput[], options: PredictImagesOptions = {}): Promise<PredictedImage[]> {
  const range = model.searchRange;
  if (!range) throw new InvalidArgumentError('This model has no saved MEBin search range (train it through discover() or pass searchRange to fit())');
  const { tauAlpha, threads, sampleRate, minIntervalLen, erode, device, precision } = resolveOptions(PREDICT_IMAGES_FIELDS, options);
  const { signal, onProgress } = options;
  const regions = await extractRegions(images, maps, {
    range,
    threads,
    sampleRate,
    minIntervalLen,
    erode,
    device,
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
  });
  const crops = regions.items.flatMap((item) => item.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  const prediction = await model.predict(crops, { threads, precision, ...(signal ? { signal } : {}) });
  return mergeImages(regions, prediction.probabilities, tauAlpha);
}

function l2normalised(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s) || 1;
  return v.map((x) => x / n);
}

/** Runs AnomalyNCD end to end over a set of images and anomaly maps. */
export async function discover(items: readonly DiscoverItem[], options: DiscoverOptions): Promise<DiscoverResult> {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('discover() needs a non-empty array of {image, map}');
  const o = resolveOptions(DISCOVER_FIELDS, options);
  const { k, threads, tauAlpha, seed } = o;
  // Checked before any work: nothing (no loaded backbone) needs freeing yet.
  if (k === 'auto' && items.length < 3) throw new InvalidArgumentError("k: 'auto' needs at least 3 images");
  const { signal, arch, labelled, training, onProgress, onTrainEvent } = options;
  const common = { threads, ...(signal ? { signal } : {}) };
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const report = (stage: string, done: number, total: number) => onProgress?.({ stage, done, total });
  const time = async <T>(stage: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await work();
    timings[stage] = performance.now() - t0;
    return out;
  };

  // 1. MEBin + crops.
  const regions = await time('regions', () =>
    extractRegions(
      items.map((i) => i.image),
      items.map((i) => i.map),
      {
        ...common,
        sampleRate: o.sampleRate,
        minIntervalLen: o.minIntervalLen,
        erode: o.erode,
        device: o.device,
        ...(o.range !== undefined ? { range: o.range } : {}),
        onProgress: (p) => report('regions', p.done, p.total),
      },
    ),
  );
  timings.mebinMsPerMap = regions.timings.mebinMsPerMap;
  timings.cropMsPerImage = regions.timings.cropMsPerImage;
  warnings.push(...regions.warnings);
  const crops = regions.items.flatMap((item, image) => item.crops.map((c) => ({ image, crop: c })));
  const trainCrops = crops.map(({ crop }) => ({ image: crop.image!, mask: crop.mask!, score: crop.score }));
  let backboneFacts: DiscoverResult['backbone'] | undefined;

  // 2. Frozen features → image features (region-merge weights) → K and the k-means baseline.
  // The crops' test-time transform and forward run natively: only features come back.
  // The backbone is loaded once: it serves the features, then fit() trains a copy of its
  // weights (the checkpoint is not read again). Freed when training settles, or on a
  // failure before.
  let loaded: Backbone | undefined;
  const frozen = await time('features', async () => {
    const backbone = await loadBackbone(o.backbone ?? null, {
      ...(arch !== undefined ? { arch } : {}),
      seed,
      device: o.device,
      precision: o.precision,
      ...(signal ? { signal } : {}),
    });
    loaded = backbone;
    try {
      backboneFacts = { path: backbone.info.path, arch: backbone.config, archSource: backbone.info.archSource };
      warnings.push(...backbone.info.notes.filter((n) => n.includes("'bf16'"))); // a slow bf16 CPU, said once
      const out: Float32Array[] = [];
      if (trainCrops.length === 0) return out;
      const n = trainCrops.length;
      const y = await backbone.embedCrops(
        trainCrops.map((c) => ({ image: c.image, mask: c.mask })),
        {
          ...common,
          // Progress as before: every 64 crops and at the end.
          onProgress: (p) => {
            if (p.done % 64 === 0 || p.done === n) report('features', p.done, n);
          },
        },
      );
      const d = y.shape[1]!;
      for (let i = 0; i < n; i++) out.push(l2normalised(y.data.slice(i * d, (i + 1) * d)));
      return out;
    } catch (e) {
      backbone.dispose();
      throw e;
    }
  });
  if (!o.backbone) warnings.push('No --backbone given: the ViT is RANDOMLY INITIALISED, so features carry little meaning. Pass a DINO checkpoint for real results.');
  const dim = frozen[0]!.length;
  const imageFeatures = new Float32Array(items.length * dim);
  // Crops are in image order: each image's crop features, pooled with its region-merge weights.
  let first = 0;
  regions.items.forEach((item, i) => {
    const weights = regionWeights(item.crops.map((c) => c.maskArea), tauAlpha);
    item.crops.forEach((_, r) => {
      for (let d = 0; d < dim; d++) imageFeatures[i * dim + d]! += weights[r]! * frozen[first + r]![d]!;
    });
    first += item.crops.length;
  });
  // Until fit() takes it over, a failure frees the loaded backbone at once.
  const freeing = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      loaded?.dispose();
      throw e;
    }
  };
  let K: number;
  const kChoice: DiscoverResult['kChoice'] = { mode: k === 'auto' ? 'auto' : 'given' };
  if (k === 'auto') {
    const [kMin, kMax] = o.kRange ?? [2, Math.min(10, items.length - 1)];
    const est = await freeing(() => time('estimateK', async () => estimateK(imageFeatures, items.length, dim, { kMin, kMax: Math.max(kMin, kMax), seed })));
    K = est.k;
    kChoice.curve = est.curve;
  } else K = k;
  const baseline = await freeing(() => time('kmeansBaseline', async () => kmeans(imageFeatures, items.length, dim, Math.min(K, items.length), { seed })));

  // 3. Training.
  const model = await time('training', () =>
    fit(
      { unlabelled: trainCrops, ...(labelled ? { labelled } : {}) },
      {
        ...training,
        k: K,
        backbone: loaded!,
        ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
        seed,
        threads,
        precision: o.precision, // the device: where the loaded backbone lives
        // A degenerate range (min == max: every map fell back) is not recorded: fit()
        // refuses it, as MEBin's `range` option and predict() would.
        ...(regions.searchRange[0] < regions.searchRange[1] ? { searchRange: regions.searchRange } : {}),
        ...(signal ? { signal } : {}),
        onProgress: (e) => {
          if (e.type === 'epoch') report('training', e.epoch + 1, e.epochs);
          onTrainEvent?.(e);
        },
      },
    ).finally(() => loaded!.dispose()),
  );
  warnings.push(...model.warnings.filter((w) => !/random/i.test(w) || o.backbone));

  // 4. Prediction and region merging.
  const prediction = await time('predict', () =>
    model.predict(trainCrops, { embeddings: true, threads, precision: o.precision, ...(signal ? { signal } : {}), onProgress: (p) => report('predict', p.done, p.total) }),
  );
  const t0 = performance.now();
  const predicted = mergeImages(regions, prediction.probabilities, tauAlpha);
  const images: DiscoveredImage[] = predicted.map((p, i) => {
    const out: DiscoveredImage = {
      name: items[i]!.name ?? (typeof items[i]!.image === 'string' ? (items[i]!.image as string) : String(i)),
      ...p,
      baselineCluster: baseline.labels[i]!,
    };
    if (items[i]!.label !== undefined) out.label = items[i]!.label!;
    return out;
  });
  timings.merge = performance.now() - t0;

  // 5. Metrics against the truth, when every image has a label.
  let metrics: DiscoverResult['metrics'];
  if (items.every((i) => i.label !== undefined)) {
    const truth = items.map((i) => i.label!);
    metrics = { anomalyncd: evaluate(truth, images.map((i) => i.cluster)), kmeansBaseline: evaluate(truth, images.map((i) => i.baselineCluster)) };
  }
  return {
    images,
    k: K,
    kChoice,
    ...(metrics ? { metrics } : {}),
    searchRange: regions.searchRange,
    timings,
    device: model.device,
    precision: o.precision,
    warnings,
    model,
    crops: crops.map((c, j) => ({ image: c.image, frozen: frozen[j]!, trained: prediction.embeddings?.[j] ?? new Float32Array(0), probabilities: prediction.probabilities[j]! })),
    regions,
    backbone: backboneFacts!,
  };
}
