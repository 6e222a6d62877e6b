/**
 * The whole AnomalyNCD run (METHOD.md §0): MEBin → anomaly-centred crops → frozen
 * features and the k-means baseline → (K estimation) → mask-guided NCD
 * training → per-crop prediction → region merging → metrics.
 * @module
 */
import { kmeans, type KScore } from '../analysis/cluster.js';
import { countMassK, DEFAULT_K_METHOD, estimateKAsync, K_METHODS, type KMethod } from '../analysis/estimate-k-async.js';
import { InvalidArgumentError, shown } from '../core/errors.js';
import { bool, defaulted, deviceField, int, intRange, num, oneOf, precisionField, rejectUnknownOptions, resolveOptions, str, threadsField, type AllKeysKnown, type DeviceRequest, type Field, type Precision } from '../core/options.js';
import { mergeRegions, argmax, poolCropRows } from '../analysis/merge.js';
import { evaluate, type ClassLabel, type EvaluationResult } from '../analysis/metrics.js';
import { loadBackbone, type ArchSpec, type Backbone, type BackboneInfo, type VitConfig } from './model.js';
import { extractRegions, MASK_MAP_FIELDS, type Box, type ImageInput, type MaskMapOptions, type RegionsResult } from './regions.js';
import { fit, SEED_FIELD, type FitOptions, type LabelledCrop, type Prediction, TrainedModel, type TrainEvent } from './train.js';
import { MEBIN_FIELDS, type MapInput, type MebinOptions } from './mebin.js';
import type { Progress } from '../core/jobs.js';
import { DEFAULT_K_FEATURES, descriptorModel, descriptorNovelty, joinStandardised, K_FEATURES, regionDescriptor, standardise, type DescriptorModel, type KFeatures } from '../analysis/descriptors.js';
import { calibrateThreshold, cropNovelty, DEFAULT_NOVELTY_SCORE, featurePrototypes, imageNovelty, NOVELTY_SCORES, prototypeNovelty, type FeaturePrototypes, type NoveltyScore } from '../analysis/novelty.js';
import { mulberry32 } from '../core/random.js';

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
export interface DiscoverOptions extends MebinOptions, MaskMapOptions {
  /** Number of defect types (novel classes), or `'auto'` to estimate it with `kMethod`. */
  k: number | 'auto';
  /**
   * How `k: 'auto'` estimates K (ignored for a given k; default {@link DEFAULT_K_METHOD}):
   * `'silhouette'`, `'stability'`, `'eigengap'`, `'bic'` (the frozen image features), `'gcd'` (the
   * frozen features of the images and of `labelled`, which it needs), `'mass'` (one extra
   * training run with `kRange[1]` clusters, then the clusters holding real mass).
   * See `estimateKAsync` and README "Choosing K".
   */
  kMethod?: KMethod;
  /**
   * What the feature methods (silhouette, stability, eigengap, bic, gcd) estimate K from:
   * `'backbone'` (the frozen [CLS] image features), `'descriptors'` (default: the images'
   * region descriptors: shape and appearance of their masks and pixels, standardised;
   * analysis/descriptors) or `'both'` (the two joined, each block z-scored and weighted
   * equally). `mass` ignores it.
   */
  kFeatures?: KFeatures;
  /** `kMethod: 'mass'`: share of the images a cluster needs (default `1 / (2 kRange[1])`). */
  massThreshold?: number;
  /** Range searched by `k: 'auto'` (default [2, min(10, images - 1)]). */
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
  /**
   * Fraction of the images held out from training to calibrate the novelty threshold
   * (default 0.2; 0: train on every image, as the reference does, and calibrate
   * nothing). Held-out images are chosen by the seed, still predicted and evaluated,
   * and marked `heldOut`. Fewer than 5 held-out images: no calibration (a warning).
   */
  holdout?: number;
  /** False-alarm rate the novelty threshold is calibrated to (default 0.05). */
  falseAlarmRate?: number;
  /** Per-crop novelty score (default 'descriptor'; of the backbone scores, 'prototype' for far-off novelties; see analysis/novelty). */
  noveltyScore?: NoveltyScore;
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
  /** How unlike every known type the region is (higher = more novel; analysis/novelty). */
  novelty: number;
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
  /** The regions' novelty merged with the region weights (higher = less like any known type). */
  novelty: number;
  /** novelty above the calibrated threshold: belongs to none of the K types; null when the model has no calibration. */
  unknown: boolean | null;
  regions: DiscoveredRegion[];
  /** Held out from training to calibrate the novelty threshold. */
  heldOut: boolean;
  /** The k-means baseline's cluster for this image. */
  baselineCluster: number;
}

/** Result of {@link discover}. */
export interface DiscoverResult {
  images: DiscoveredImage[];
  k: number;
  /**
   * How K was chosen; for `'auto'`: the method, its curve (`scoreName` says what the score
   * is) and its cost in ms (for `mass`, including its training run).
   */
  kChoice: { mode: 'given' | 'auto'; method?: KMethod; curve?: KScore[]; scoreName?: string; ms?: number; /** What a feature method estimated K from (`kFeatures`). */ features?: KFeatures };
  /** The novelty calibration (also in `model.inference`): null when none was made. */
  calibration: { score: NoveltyScore; threshold: number; falseAlarmRate: number; images: number } | null;
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
function mergeImages(
  regions: RegionsResult,
  probabilities: readonly ArrayLike<number>[],
  cropScores: readonly number[],
  tauAlpha: number,
  novelty: { tauAlpha: number; threshold: number | null },
): Omit<DiscoveredImage, 'name' | 'label' | 'baselineCluster' | 'heldOut'>[] {
  let next = 0;
  return regions.items.map((item) => {
    const mine = item.crops.map((crop) => {
      const j = next++;
      return { crop, p: probabilities[j]!, n: cropScores[j]! };
    });
    const merged = mergeRegions(mine.map(({ crop, p }) => ({ probabilities: p, maskArea: crop.maskArea })), tauAlpha);
    const score = imageNovelty(mine.map((m) => m.n), mine.map((m) => m.crop.maskArea), novelty.tauAlpha);
    return {
      cluster: merged.cluster,
      probabilities: Array.from(merged.probabilities),
      novelty: score,
      unknown: novelty.threshold === null ? null : score > novelty.threshold,
      regions: mine.map(({ crop, p, n }) => {
        const c = argmax(p);
        return { box: crop.box, cluster: c, probability: p[c]!, novelty: n, maskArea: crop.maskArea, score: crop.score };
      }),
    };
  });
}

/** How a model scores novelty: its recorded score (prototype / descriptor need their recorded data, else cosine, uncalibrated) and calibration. */
interface Scoring {
  score: NoveltyScore;
  prototypes: FeaturePrototypes | null;
  descriptors: DescriptorModel | null;
  tauAlpha: number;
  threshold: number | null;
}

function prototypesOf(r: { featureMean: readonly number[]; prototypes: readonly number[] }): FeaturePrototypes | null {
  const D = r.featureMean.length;
  if (D === 0) return null;
  return {
    mean: Float64Array.from(r.featureMean),
    rows: Array.from({ length: r.prototypes.length / D }, (_, i) => Float64Array.from(r.prototypes.slice(i * D, (i + 1) * D))),
  };
}

function descriptorModelOf(r: { descriptorMean?: readonly number[]; descriptorScale?: readonly number[]; descriptorBank?: readonly number[] }): DescriptorModel | null {
  if (!r.descriptorMean || r.descriptorMean.length === 0 || !r.descriptorScale || !r.descriptorBank) return null;
  return { scaler: { mean: Float64Array.from(r.descriptorMean), scale: Float64Array.from(r.descriptorScale) }, bank: Float64Array.from(r.descriptorBank) };
}

function scoringOf(model: TrainedModel): Scoring {
  const r = model.inference;
  let score = r && (NOVELTY_SCORES as readonly string[]).includes(r.noveltyScore) ? (r.noveltyScore as NoveltyScore) : DEFAULT_NOVELTY_SCORE;
  const prototypes = r ? prototypesOf(r) : null;
  let calibrated = !!r && r.calibrationImages > 0;
  const descriptors = r ? descriptorModelOf(r) : null;
  if ((score === 'prototype' && !prototypes) || (score === 'descriptor' && !descriptors)) {
    score = 'cosine'; // nothing recorded for the score: the head's cosine distance, uncalibrated
    calibrated = false;
  }
  return { score, prototypes, descriptors, tauAlpha: r?.tauAlpha ?? 50, threshold: calibrated ? r!.noveltyThreshold : null };
}

/** Per-crop novelty of a prediction (with logits, embeddings for `prototype`, the crops' raw region descriptors for `descriptor`). */
function cropScores(prediction: Prediction, scoring: Pick<Scoring, 'score' | 'prototypes' | 'descriptors'>, cropDescriptors: () => Float64Array[]): number[] {
  const { score, prototypes, descriptors } = scoring;
  if (score === 'prototype') return prediction.embeddings!.map((e) => prototypeNovelty(e, prototypes!));
  if (score === 'descriptor') {
    const D = descriptors!.scaler.mean.length;
    return cropDescriptors().map((d) => descriptorNovelty(standardise(d, descriptors!.scaler), descriptors!.bank, D));
  }
  return prediction.logits!.map((l) => cropNovelty(l, score));
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
  // No defaults: absent means "as the model recorded".
  masksAsMaps: bool(),
  maskLevel: int({ min: 1, max: 255 }),
  sampleRate: MEBIN_FIELDS.sampleRate,
  minIntervalLen: MEBIN_FIELDS.minIntervalLen,
  erode: MEBIN_FIELDS.erode,
  // Default: the model's recorded temperature, else 50.
  tauAlpha: num({ min: 0, max: 1e9, gt: true }),
  threads: defaulted(threadsField),
  device: deviceField,
  precision: precisionField,
} as const;

/** What `discover()` reads of its scalar options, once; objects (arch, labelled, training) are passed to the stage that validates them. */
const DISCOVER_FIELDS = {
  ...MEBIN_FIELDS,
  ...MASK_MAP_FIELDS,
  k: K_FIELD,
  kMethod: defaulted(oneOf(K_METHODS, { default: DEFAULT_K_METHOD })),
  kFeatures: defaulted(oneOf(K_FEATURES, { default: DEFAULT_K_FEATURES })),
  massThreshold: num({ min: 0, max: 1, gt: true }),
  kRange: intRange({ lo: 2, hi: 1000, allowEqual: true }),
  backbone: str(),
  epochs: int({ min: 1, max: 100000 }),
  seed: SEED_FIELD,
  threads: defaulted(threadsField),
  tauAlpha: TAU_ALPHA_FIELD,
  holdout: defaulted(num({ min: 0, max: 0.9, default: 0.2 })),
  falseAlarmRate: defaulted(num({ min: 0, max: 1, gt: true, default: 0.05 })),
  noveltyScore: defaulted(oneOf(NOVELTY_SCORES, { default: DEFAULT_NOVELTY_SCORE })),
  device: deviceField,
  precision: precisionField,
} as const;

/** A job's options outside the field tables. */
const JOB_CALLBACK_KEYS = ['signal', 'onProgress'] as const;
const everyPredictKeyKnown: AllKeysKnown<PredictImagesOptions, keyof typeof PREDICT_IMAGES_FIELDS | (typeof JOB_CALLBACK_KEYS)[number]> = true;
void everyPredictKeyKnown;

/** The {@link DiscoverOptions} that the field table does not check (objects and callbacks, checked where used). */
const DISCOVER_OTHER_KEYS = ['arch', 'labelled', 'training', 'signal', 'onProgress', 'onTrainEvent'] as const satisfies readonly (keyof DiscoverOptions)[];
// Every DiscoverOptions key is known to the check (compile-time).
const everyDiscoverKeyKnown: AllKeysKnown<DiscoverOptions, keyof typeof DISCOVER_FIELDS | (typeof DISCOVER_OTHER_KEYS)[number]> = true;
void everyDiscoverKeyKnown;

/** Options of {@link predict}. */
export interface PredictImagesOptions extends Omit<MebinOptions, 'range'>, MaskMapOptions {
  /** Region-merging temperature (default: the model's recorded one, else 50; 100 for MVTec AD). */
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
export type PredictedImage = Omit<DiscoveredImage, 'name' | 'label' | 'baselineCluster' | 'heldOut'>;

/**
 * Classifies new images with a trained model: MEBin with the search range saved
 * at training time (METHOD.md T31: a new image alone would give a degenerate range),
 * crops, per-crop novel-class probabilities, region merging.
 */
export async function predict(model: TrainedModel, images: readonly ImageInput[], maps: readonly MapInput[], options: PredictImagesOptions = {}): Promise<PredictedImage[]> {
  if (!(model instanceof TrainedModel)) throw new InvalidArgumentError('predict(model, images, maps) needs a TrainedModel');
  rejectUnknownOptions('predict()', options, [...Object.keys(PREDICT_IMAGES_FIELDS), ...JOB_CALLBACK_KEYS]);
  const { threads, sampleRate, minIntervalLen, erode, device, precision, ...given } = resolveOptions(PREDICT_IMAGES_FIELDS, options);
  const tauAlpha = given.tauAlpha ?? model.inference?.tauAlpha ?? 50;
  // Masks as maps as the model recorded it (an explicit option overrides the record).
  const masksAsMaps = given.masksAsMaps ?? model.inference?.masksAsMaps ?? false;
  const maskLevel = given.maskLevel ?? model.inference?.maskLevel ?? 128;
  const range = model.searchRange;
  if (!masksAsMaps && !range) throw new InvalidArgumentError('This model has no saved MEBin search range (train it through discover() or pass searchRange to fit())');
  const { signal, onProgress } = options;
  const scoring = scoringOf(model);
  const regions = await extractRegions(images, maps, {
    ...(masksAsMaps ? { masksAsMaps, maskLevel } : { range: range! }),
    descriptors: scoring.score === 'descriptor',
    threads,
    sampleRate,
    minIntervalLen,
    erode,
    device,
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
  });
  const regionCrops = regions.items.flatMap((item) => item.crops);
  const crops = regionCrops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score }));
  const prediction = await model.predict(crops, { threads, precision, logits: true, embeddings: scoring.score === 'prototype', ...(signal ? { signal } : {}) });
  const descriptorsOf = () => regionCrops.map((c) => c.descriptor!);
  return mergeImages(regions, prediction.probabilities, cropScores(prediction, scoring, descriptorsOf), tauAlpha, scoring);
}

function l2normalised(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s) || 1;
  return v.map((x) => x / n);
}

/** Each image's region descriptor: its crops' descriptors merged with the region weights (crops in image order). */
function imageDescriptors(regions: RegionsResult, cropDescriptors: readonly Float64Array[], tauAlpha: number): { data: Float64Array; dim: number } {
  const dim = cropDescriptors[0]!.length;
  return { data: poolCropRows(regions.items, (j) => cropDescriptors[j]!, dim, tauAlpha, new Float64Array(regions.items.length * dim)), dim };
}

/** Below this many images per estimated type `bic` under-estimates K (bench/RESULTS.md: 12 per type, 2–3 every time; 40 per type, exact for K = 3 and 5): discover warns. */
const BIC_IMAGES_PER_TYPE = 40;

/** Fewer held-out images than this: no calibration. */
const MIN_CALIBRATION_IMAGES = 5;

/** The images held out for calibration: round(n * fraction) of them, by a seeded shuffle; none when too few. */
function chooseHoldout(n: number, fraction: number, seed: number): Set<number> {
  const m = Math.round(n * fraction);
  if (m < MIN_CALIBRATION_IMAGES || m >= n) return new Set();
  const rand = mulberry32((seed ^ 0x6e6f7631) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return new Set(order.slice(0, m));
}

/** An inference record with no novelty calibration. */
const NO_CALIBRATION = {
  masksAsMaps: false, maskLevel: 128, noveltyScore: DEFAULT_NOVELTY_SCORE as string, noveltyThreshold: 0, falseAlarmRate: 0.05, calibrationImages: 0, tauAlpha: 50,
  featureMean: [] as number[], prototypes: [] as number[], descriptorMean: [] as number[], descriptorScale: [] as number[], descriptorBank: [] as number[],
};

/** Runs AnomalyNCD end to end over a set of images and anomaly maps. */
export async function discover(items: readonly DiscoverItem[], options: DiscoverOptions): Promise<DiscoverResult> {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('discover() needs a non-empty array of {image, map}');
  items.forEach((item, i) => {
    if (typeof item !== 'object' || item === null) throw new InvalidArgumentError(`discover(): items[${i}] must be an object {image, map} (got ${shown(item)})`);
  });
  rejectUnknownOptions('discover()', options, [...Object.keys(DISCOVER_FIELDS), ...DISCOVER_OTHER_KEYS]);
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
        masksAsMaps: o.masksAsMaps,
        maskLevel: o.maskLevel,
        device: o.device,
        // the descriptor novelty score and kFeatures use them; C++, on the regions threads
        descriptors: true,
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
  // Images held out from the fit to calibrate the novelty threshold (seeded choice).
  const heldOut = chooseHoldout(items.length, o.holdout, seed);
  if (o.holdout > 0 && heldOut.size === 0)
    warnings.push(`holdout ${o.holdout} of ${items.length} images leaves fewer than ${MIN_CALIBRATION_IMAGES} images to calibrate the novelty threshold: every image trains, 'unknown' is not calibrated`);
  const fitCrops = heldOut.size ? trainCrops.filter((_, j) => !heldOut.has(crops[j]!.image)) : trainCrops;
  // Region descriptors of every crop, computed with the crops (timings: their compute time
  // summed over the regions threads, part of 'regions').
  const cropDescriptors = crops.map(({ crop }) => crop.descriptor!);
  timings.descriptors = regions.timings.descriptorMsPerImage * items.length;
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
  // Each image's crop features, pooled with its region-merge weights.
  const imageFeatures = poolCropRows(regions.items, (j) => frozen[j]!, dim, tauAlpha, new Float32Array(items.length * dim));
  // Until fit() takes it over, a failure frees the loaded backbone at once.
  const freeing = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      loaded?.dispose();
      throw e;
    }
  };
  // kMethod 'mass': train once with kMax clusters (same options), count the clusters that hold
  // real mass over the region-merged image predictions, free that model.
  const estimateByMass = async (kMax: number) => {
    const t0 = performance.now();
    const over = await fit(
      // The crops the final model trains on (the calibration's held-out images stay out).
      { unlabelled: fitCrops, ...(labelled ? { labelled } : {}) },
      {
        ...training,
        k: kMax,
        backbone: loaded!,
        ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
        seed,
        threads,
        ...(signal ? { signal } : {}),
        onProgress: (e) => {
          if (e.type === 'epoch') report('estimateK', e.epoch + 1, e.epochs);
        },
      },
    );
    try {
      const pred = await over.predict(trainCrops, common);
      let next = 0;
      const merged = regions.items.map((item) => mergeRegions(item.crops.map((c) => ({ probabilities: pred.probabilities[next++]!, maskArea: c.maskArea })), tauAlpha).probabilities);
      const est = countMassK(merged, kMax, o.massThreshold);
      return { ...est, ms: performance.now() - t0 };
    } finally {
      over.dispose();
    }
  };
  let K: number;
  const kChoice: DiscoverResult['kChoice'] = { mode: k === 'auto' ? 'auto' : 'given' };
  if (k === 'auto') {
    const [kMin, kMaxIn] = o.kRange ?? [2, Math.min(10, items.length - 1)];
    const kMax = Math.max(kMin, kMaxIn);
    const method = o.kMethod;
    if (method === 'gcd' && (labelled === undefined || labelled.length === 0))
      throw new InvalidArgumentError("kMethod 'gcd' needs a labelled set (option 'labelled' / --labeled)");
    const est = await freeing(() =>
      time('estimateK', async () => {
        if (method === 'mass') return estimateByMass(kMax);
        let gcdLabelled: { data: Float32Array | Float64Array; n: number; labels: ClassLabel[]; descriptors: { data: Float64Array; dim: number } } | undefined;
        if (method === 'gcd') {
          // D^l through the same frozen backbone, one feature per labelled crop.
          const y = await loaded!.embedCrops(labelled!.map((c) => ({ image: c.image, mask: c.mask })), common);
          const d = y.shape[1]!;
          const data = new Float32Array(labelled!.length * d);
          for (let i = 0; i < labelled!.length; i++) data.set(l2normalised(y.data.slice(i * d, (i + 1) * d)), i * d);
          const ld = labelled!.map((c) => regionDescriptor(c.image, c.mask));
          const descriptors = { data: Float64Array.from(ld.flatMap((r) => Array.from(r))), dim: ld[0]!.length };
          gcdLabelled = { data: data as Float32Array | Float64Array, n: labelled!.length, labels: labelled!.map((c) => c.label), descriptors };
        }
        // The image rows the estimator sees (kFeatures): backbone features, region descriptors, or both.
        let kData: Float32Array | Float64Array = imageFeatures;
        let kDim = dim;
        if (o.kFeatures !== 'backbone') {
          const desc = imageDescriptors(regions, cropDescriptors, tauAlpha);
          const blocks = o.kFeatures === 'descriptors' ? [desc] : [desc, { data: imageFeatures, dim }];
          const otherBlocks = gcdLabelled ? (o.kFeatures === 'descriptors' ? [gcdLabelled.descriptors] : [gcdLabelled.descriptors, { data: gcdLabelled.data, dim }]) : undefined;
          const joined = joinStandardised(blocks, items.length, otherBlocks ? { blocks: otherBlocks, n: gcdLabelled!.n } : undefined);
          kData = joined.fit;
          kDim = joined.dim;
          if (gcdLabelled) gcdLabelled.data = joined.other!;
        }
        return estimateKAsync(kData, items.length, kDim, {
          method,
          kMin,
          kMax: Math.min(kMax, items.length - 1),
          seed,
          ...(gcdLabelled ? { labelled: { data: gcdLabelled.data, n: gcdLabelled.n, labels: gcdLabelled.labels } } : {}),
          ...(signal ? { signal } : {}),
        });
      }),
    );
    // mass may count fewer clusters than kMin (or, never, more than kMax): K stays in the range.
    K = Math.min(kMax, Math.max(kMin, est.k));
    if (K !== est.k) warnings.push(`kMethod '${method}' found ${est.k} clusters; K is kept within kRange [${kMin}, ${kMax}]: ${K}`);
    if (method === 'bic' && items.length < BIC_IMAGES_PER_TYPE * K)
      warnings.push(
        `kMethod 'bic' chose K = ${K} from ${items.length} images: with fewer than ~${BIC_IMAGES_PER_TYPE} images per type its full-covariance ` +
          "mixtures cannot pay BIC's penalty and K is under-estimated (bench/RESULTS.md, small sets). Consider kMethod 'eigengap' or 'mass', or give k.",
      );
    Object.assign(kChoice, { method, curve: est.curve, scoreName: est.scoreName, ms: est.ms, ...(method !== 'mass' ? { features: o.kFeatures } : {}) });
  } else K = k;
  const baseline = await freeing(() => time('kmeansBaseline', async () => kmeans(imageFeatures, items.length, dim, Math.min(K, items.length), { seed })));

  // 3. Training.
  const model = await time('training', () =>
    fit(
      { unlabelled: fitCrops, ...(labelled ? { labelled } : {}) },
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
  model.inference = { ...NO_CALIBRATION, masksAsMaps: o.masksAsMaps, maskLevel: o.maskLevel, noveltyScore: o.noveltyScore, falseAlarmRate: o.falseAlarmRate, tauAlpha };

  // 4. Prediction and region merging.
  const prediction = await time('predict', () =>
    model.predict(trainCrops, { embeddings: true, logits: true, threads, precision: o.precision, ...(signal ? { signal } : {}), onProgress: (p) => report('predict', p.done, p.total) }),
  );
  const t0 = performance.now();
  // Novelty prototypes from the fit crops only (their trained features and clusters).
  const fitIndex = crops.map((c, j) => (heldOut.has(c.image) ? -1 : j)).filter((j) => j >= 0);
  const prototypes = featurePrototypes(fitIndex.map((j) => prediction.embeddings![j]!), fitIndex.map((j) => argmax(prediction.probabilities[j]!)), K);
  // The descriptor score's statistics and bank from the fit crops only.
  const descriptors = descriptorModel(fitIndex.map((j) => cropDescriptors[j]!), mulberry32((seed ^ 0x64657363) >>> 0));
  model.inference = {
    ...model.inference!,
    featureMean: Array.from(prototypes.mean),
    prototypes: prototypes.rows.flatMap((r) => Array.from(r)),
    descriptorMean: Array.from(descriptors.scaler.mean),
    descriptorScale: Array.from(descriptors.scaler.scale),
    descriptorBank: Array.from(descriptors.bank),
  };
  let predicted = mergeImages(regions, prediction.probabilities, cropScores(prediction, { score: o.noveltyScore, prototypes, descriptors }, () => cropDescriptors), tauAlpha, { tauAlpha, threshold: null });
  let calibration: DiscoverResult['calibration'] = null;
  if (heldOut.size) {
    // Calibrated on the held-out images only (never on the crops the model trained on).
    const threshold = calibrateThreshold(predicted.filter((_, i) => heldOut.has(i)).map((p) => p.novelty), o.falseAlarmRate);
    calibration = { score: o.noveltyScore, threshold, falseAlarmRate: o.falseAlarmRate, images: heldOut.size };
    model.inference = { ...model.inference, noveltyThreshold: threshold, calibrationImages: heldOut.size };
    predicted = predicted.map((p) => ({ ...p, unknown: p.novelty > threshold }));
  }
  const images: DiscoveredImage[] = predicted.map((p, i) => {
    const out: DiscoveredImage = {
      name: items[i]!.name ?? (typeof items[i]!.image === 'string' ? (items[i]!.image as string) : String(i)),
      ...p,
      heldOut: heldOut.has(i),
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
    calibration,
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
