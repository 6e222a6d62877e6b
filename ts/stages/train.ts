/**
 * NCD training (METHOD.md §4.3–§6): fit the mask-guided ViT's last block, the projection
 * MLP and the cosine heads on anomaly-centred crops, then predict novel-class
 * probabilities with the exact test-time preprocessing.
 *
 * ```ts
 * import { fit, loadLabelledFolder } from 'anomalyncd';
 * const labelled = await loadLabelledFolder('AeBAD_crop');
 * const model = await fit({ unlabelled: crops, labelled }, { k: 6, backbone: 'dino_vitb8.pth', seed: 3407, threads: 8 });
 * const { probabilities } = await model.predict(crops);
 * await model.save('mtd.safetensors');
 * model.dispose();
 * ```
 *
 * Everything heavy runs natively on worker threads (sampling, both augmented
 * views, forward/backward, SGD); nothing per sample runs in JavaScript.
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from '../io/files.js';
import { extractRegions } from './regions.js';
import { BadInputError, InvalidArgumentError, IoError } from '../core/errors.js';
import { runJob, type Progress } from '../core/jobs.js';
import { bool, defaulted, deviceField, int, intRange, num, optionsObject, precisionField, resolveOptions, str, threadsField, type DeviceRequest, type Field, type Precision, type Resolved, rejectUnknownOptions, type AllKeysKnown } from '../core/options.js';
import { modelAddon, testingAddon } from '../native/loader.js';
import { Backbone, rawBackbone, resolveArch, type ArchSpec, type VitConfig } from './model.js';
import { isTensorLike, Tensor } from '../core/tensor.js';
import type {
  RawEpochRecord,
  RawFitOptions,
  RawInferenceRecord,
  RawProgress,
  RawTrainAddon,
  RawTrainConfig,
  RawTrainCrop,
  RawTrainedModel,
  RawTrainEvent,
  RawTrainKernels,
  RawTrainLosses,
} from '../native/addon-types.js';

/** One unlabelled training crop (an anomaly-centred sub-image and its mask). */
export interface TrainCrop {
  /** uint8 [h, w, 3] RGB, or [h, w] / [h, w, 1] gray (replicated to RGB). */
  image: Tensor;
  /** uint8 [h, w] (or [h, w, 1]), 0..255; 255 = anomalous region. */
  mask: Tensor;
  /**
   * The crop score (METHOD.md §3.4, `RegionCrop.score`) for pseudo-label correction:
   * weight `max(0, plcThreshold - score)` toward the first novel class. Absent or
   * NaN: no correction for this crop.
   */
  score?: number;
}

/** One labelled crop of the known-class set D^l. */
export interface LabelledCrop {
  image: Tensor;
  mask: Tensor;
  /** Class name; known classes are indexed in sorted name order. */
  label: string;
}

/** Training data: the unlabelled crops of one category, optionally a labelled set. */
export interface TrainDataset {
  unlabelled: readonly TrainCrop[];
  /**
   * Labelled crops (D^l). Without them the labelled loss terms are 0 and no batch is
   * skipped (the reference always has D^l and skips batches lacking either kind).
   */
  labelled?: readonly LabelledCrop[];
}

/** Loss terms (METHOD.md §5.4); per-head arrays have one entry per head. */
export interface TrainLosses {
  /** Eq. 7 total. */
  total: number;
  /** Unsupervised contrastive (InfoNCE, temperature 1.0). */
  infoNce: number;
  /** Supervised contrastive (SupCon, 0.07); 0 without labelled rows. */
  supCon: number;
  /** Supervised cross-entropy per head; 0 without labelled rows. */
  ce: number[];
  /** Cross-view self-distillation per head. */
  distill: number[];
  /** Mean-entropy regulariser per head. */
  memax: number[];
  /** distill + memaxWeight * memax per head (head selection, METHOD.md §4.5). */
  cluster: number[];
}

/** A training progress event. */
export interface TrainEvent {
  type: 'batch' | 'epoch';
  /** 0-based epoch. */
  epoch: number;
  epochs: number;
  /** 0-based batch index (batch events); the number of batches (epoch events). */
  batch: number;
  /** Batches trained this epoch (after the T24 skip rule). */
  batches: number;
  /** The batch's values, or the epoch's means. */
  losses: TrainLosses;
  lr: number;
  teacherTemp: number;
  /** Wall time of the batch (wait for its views + model work) or of the epoch. */
  ms: number;
  /** Augmentation work (it overlaps the previous batch's model work). */
  augmentMs: number;
  /** Time the model waited for augmentation. */
  waitMs: number;
  /** Forward, losses, backward and SGD step. */
  modelMs: number;
  /** Batches dropped this epoch by the T24 rule. */
  skipped: number;
  /** Rows (2 x batch size) of a batch event; 0 for epoch events. */
  rows: number;
}

/** One finished epoch. */
export interface EpochRecord {
  epoch: number;
  batches: number;
  skipped: number;
  lr: number;
  teacherTemp: number;
  /** Means over the epoch's batches. */
  losses: TrainLosses;
  ms: number;
  augmentMs: number;
  waitMs: number;
  modelMs: number;
}

/** Teacher temperature schedule (METHOD.md §5.4). */
export interface TeacherTempOptions {
  /** First ramp value (default 0.07). */
  warmupTemp?: number;
  /** Final value (default 0.04). */
  finalTemp?: number;
  /** Ramp length in epochs (default 40). */
  warmupEpochs?: number;
  /** Each ramp value is held this many epochs (default 4). */
  repeatTimes?: number;
}

/** Options of {@link fit}. Defaults are the reference's (METHOD.md §11). */
export interface FitOptions {
  /** Number of novel classes K (explicit; never inferred from folder names). */
  k: number;
  /** Names of the K novel classes (default `novel_0` ...). */
  novelClassNames?: readonly string[];
  /**
   * The frozen backbone: a {@link Backbone} already loaded (its weights are used as
   * they are; the file is not read again), or a DINO ViT checkpoint path (.pth zip state
   * dict or .safetensors). Without it the ViT is randomly initialised (a warning says so).
   */
  backbone?: Backbone | string | null;
  /**
   * Architecture: a preset, fields, or JSON text (default: read from the `backbone`
   * checkpoint, else `dino_vitb8`). Not with a loaded Backbone, which has its own.
   */
  arch?: ArchSpec;
  /** Default 50. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Base learning rate (default 0.003), cosine-annealed per epoch to lr * 1e-3. */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** On >= 2-D trainable parameters only (default 5e-5). */
  weightDecay?: number;
  /** lambda of Eq. 7 (default 0.3). */
  supWeight?: number;
  /** Weight of the mean-entropy term (default 4). */
  memaxWeight?: number;
  /** PLC threshold (default 0.5; negative turns PLC off). */
  plcThreshold?: number;
  teacherTemp?: TeacherTempOptions;
  /** Classifier heads (default 4). */
  nHead?: number;
  /** Backbone blocks with index >= this train (default: the last block, 11 for the 12-block presets). */
  gradFromBlock?: number;
  /** Projection MLP hidden width (default 2048). */
  projHidden?: number;
  /** Projection output size (default 256). */
  projOut?: number;
  /** Seed of every random stream (default 3407). */
  seed?: number;
  /**
   * libtorch threads during training (default: all cores). Results are bit-reproducible
   * for a fixed seed and thread count. libtorch's OpenMP threads slow down sharply when
   * other processes compete for the cores (measured: 2 threads on a 2-core machine at load
   * ~9 were ~6x slower than 1 thread); on a shared machine use fewer threads than cores.
   * The setting is process-wide while the call runs (libtorch has one thread pool).
   */
  threads?: number;
  /** Augmentation worker threads (default: `threads`); does not change results. */
  augmentThreads?: number;
  /** Write a resumable bundle here after every epoch, and resume from it on start. */
  checkpointDir?: string;
  /** MEBin search range of the crops, recorded in the bundle. */
  searchRange?: [number, number];
  /**
   * Where the model, the losses and SGD run (default: a loaded `backbone`'s device, else
   * `'auto'`: the GPU when the build's libtorch has CUDA and a device is present, else the
   * CPU). Augmentation stays on CPU threads. An unmet CUDA request: `DeviceError`.
   */
  device?: DeviceRequest;
  /** `'fp32'` (default, as the reference) or `'bf16'`: bfloat16 autocast around the ViT; heads, losses, SGD and weights stay float32. */
  precision?: Precision;
  signal?: AbortSignal;
  /** Called on the main thread after every batch and epoch. */
  onProgress?: (event: TrainEvent) => void;
}

/**
 * The resolved training configuration, as the bundle records it (`anomalyncd.config`):
 * every option with its default filled, the teacher schedule flattened
 * (`warmupTeacherTemp`, `teacherTemp` = its final value, `warmupTeacherEpochs`,
 * `repeatTimes`), `numNovel` = K, `classNames` = known then novel classes, and the
 * reference's fixed loss temperatures.
 */
export interface TrainConfig {
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly supWeight: number;
  readonly memaxWeight: number;
  readonly plcThreshold: number;
  readonly warmupTeacherTemp: number;
  readonly teacherTemp: number;
  readonly warmupTeacherEpochs: number;
  readonly repeatTimes: number;
  readonly studentTemp: number;
  readonly infoNceTemp: number;
  readonly supConTemp: number;
  readonly supConBaseTemp: number;
  readonly nHead: number;
  /** The first trainable ViT block (-1 in the options: the last block). */
  readonly gradFromBlock: number;
  readonly projHidden: number;
  readonly projOut: number;
  /** K, the number of novel classes (the `k` option). */
  readonly numNovel: number;
  readonly classNames: readonly string[];
  readonly seed: number;
  readonly threads: number;
  /** 0: as many as threads. */
  readonly augmentThreads: number;
}

/** Options of {@link TrainedModel.predict}. */
export interface PredictOptions {
  /** Head to use (default: the selected head). */
  head?: number;
  /** Also return the backbone [CLS] features. */
  embeddings?: boolean;
  /** Also return the head's raw novel-class logits (cosine similarities; novelty scores, analysis/novelty). */
  logits?: boolean;
  /** Worker / libtorch threads (default: all cores). */
  threads?: number;
  /** Crops per forward (default 32). */
  batchSize?: number;
  /** `'fp32'` (default) or `'bf16'` (autocast around the ViT). The model runs where it lives ({@link TrainedModel.device}). */
  precision?: Precision;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

/** Result of {@link TrainedModel.predict}. */
export interface Prediction {
  /**
   * Per crop, probabilities over the K novel classes (METHOD.md §7 step 1: softmax of
   * logits / 0.1 over all classes, known classes zeroed, renormalised).
   */
  probabilities: Float32Array[];
  /** Per crop, the backbone feature (with `embeddings: true`). */
  embeddings?: Float32Array[];
  /** Per crop, the head's K novel-class cosine logits (with `logits: true`). */
  logits?: Float32Array[];
  /** The head used. */
  head: number;
  /** Names of the K novel classes (index order of `probabilities`). */
  classNames: string[];
}

// ---------------------------------------------------------------------------
// option tables: every option's check and default, once
// ---------------------------------------------------------------------------

/** A field whose value is checked and resolved by a nested table. */
function nested<T>(resolve: (value: unknown) => T): Field<T> & { readonly default: () => T } {
  return { check: (v) => resolve(v), default: () => resolve(undefined) };
}

/** {@link TeacherTempOptions}. */
const teacherTempTable = {
  warmupTemp: defaulted(num({ min: Number.MIN_VALUE, max: 1e6, default: 0.07 })),
  finalTemp: defaulted(num({ min: Number.MIN_VALUE, max: 1e6, default: 0.04 })),
  warmupEpochs: defaulted(int({ min: 0, max: 100000, default: 40 })),
  repeatTimes: defaulted(int({ min: 1, max: 100000, default: 4 })),
};

/** {@link FitOptions} (the dataset-dependent class names are resolved by fit()). */
/** The seed of every random stream of a run (fit, discover): the reference's 3407. @internal */
export const SEED_FIELD = defaulted(int({ min: 0, max: Number.MAX_SAFE_INTEGER, default: 3407 }));

const fitTable = {
  k: int({ min: 1, max: 100000, required: true }) as Field<number> & { readonly required: true },
  novelClassNames: {
    check(v: unknown, name: string): string[] {
      if (!Array.isArray(v) || !v.every((n) => typeof n === 'string' && n.length > 0))
        throw new InvalidArgumentError(`Option '${name}' must be an array of non-empty names`);
      return [...(v as string[])];
    },
  } as Field<string[]>,
  backbone: {
    check(v: unknown, name: string): string | Backbone | null {
      if (v === null || v instanceof Backbone) return v;
      return str().check(v, name);
    },
  } as Field<string | Backbone | null>,
  arch: { check: (v: unknown) => resolveArch(v as ArchSpec) } as Field<VitConfig>,
  epochs: defaulted(int({ min: 1, max: 100000, default: 50 })),
  batchSize: defaulted(int({ min: 1, max: 65536, default: 32 })),
  lr: defaulted(num({ min: Number.MIN_VALUE, max: 1e3, default: 0.003 })),
  momentum: defaulted(num({ min: 0, max: 0.999999, default: 0.9 })),
  weightDecay: defaulted(num({ min: 0, max: 1e3, default: 5e-5 })),
  supWeight: defaulted(num({ min: 0, max: 1, default: 0.3 })),
  memaxWeight: defaulted(num({ min: 0, max: 1e6, default: 4 })),
  plcThreshold: defaulted(num({ min: -1e6, max: 1e6, default: 0.5 })),
  teacherTemp: nested((v) => resolveOptions(teacherTempTable, v, 'teacherTemp.')),
  nHead: defaulted(int({ min: 1, max: 1024, default: 4 })),
  /** -1: the last block of the architecture (resolved natively once the depth is known). */
  gradFromBlock: defaulted(int({ min: 0, max: 1024, default: -1 })),
  projHidden: defaulted(int({ min: 1, max: 1 << 20, default: 2048 })),
  projOut: defaulted(int({ min: 1, max: 1 << 20, default: 256 })),
  seed: SEED_FIELD,
  threads: defaulted(threadsField),
  /** 0: as many as `threads`. */
  augmentThreads: defaulted(int({ min: 1, max: 1024, default: 0 })),
  checkpointDir: str(),
  searchRange: intRange({ lo: 0, hi: 255 }),
  device: { check: deviceField.check, doc: deviceField.doc } as Field<DeviceRequest>,
  precision: precisionField,
} satisfies { [K in keyof FitOptions]?: Field<unknown> };

/** The reference's loss temperatures (docs/METHOD.md §5.4): fixed, not options. */
const LOSS_TEMPERATURES = { studentTemp: 0.1, infoNceTemp: 1.0, supConTemp: 0.07, supConBaseTemp: 0.07 } as const;

/**
 * The native training configuration of validated options (every field set; the
 * names are the core's field list, train/config.h). @internal
 */
export function nativeTrainConfig(options: FitOptions, classNames: readonly string[]): RawTrainConfig {
  return trainConfigOf(resolveOptions(fitTable, options), classNames);
}

function trainConfigOf(o: Resolved<typeof fitTable>, classNames: readonly string[]): RawTrainConfig {
  return {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    supWeight: o.supWeight,
    memaxWeight: o.memaxWeight,
    plcThreshold: o.plcThreshold,
    warmupTeacherTemp: o.teacherTemp.warmupTemp,
    teacherTemp: o.teacherTemp.finalTemp,
    warmupTeacherEpochs: o.teacherTemp.warmupEpochs,
    repeatTimes: o.teacherTemp.repeatTimes,
    ...LOSS_TEMPERATURES,
    nHead: o.nHead,
    gradFromBlock: o.gradFromBlock,
    projHidden: o.projHidden,
    projOut: o.projOut,
    numNovel: o.k,
    classNames: [...classNames],
    seed: o.seed,
    threads: o.threads,
    augmentThreads: o.augmentThreads,
  };
}

/** Options of {@link TrainedModel.predict}; `head`'s bound depends on the model. */
function predictTable(nHead: number) {
  return {
    head: defaulted(int({ min: 0, max: nHead - 1, default: -1 })),
    embeddings: defaulted(bool({ default: false })),
    logits: defaulted(bool({ default: false })),
    threads: defaulted(threadsField),
    batchSize: defaulted(int({ min: 1, max: 4096, default: 32 })),
    precision: precisionField,
  } satisfies { [K in keyof PredictOptions]?: Field<unknown> };
}

const saveTable = { selfContained: defaulted(bool({ default: false })) };

/** Options of {@link loadTrainedModel}. */
const loadTable = { backbone: str(), device: deviceField };

/** Options shared by the crop readers. */
const readTable = { threads: defaulted(threadsField) };

function trainAddon(): RawTrainAddon {
  const t = (modelAddon() as unknown as { train?: RawTrainAddon }).train;
  if (!t) throw new InvalidArgumentError('This build of anomalyncd has no training stage (built without libtorch)');
  return t;
}

function losses(l: RawTrainLosses): TrainLosses {
  return { total: l.total, infoNce: l.infoNce, supCon: l.supCon, ce: l.ce, distill: l.distill, memax: l.memax, cluster: l.cluster };
}

function epochRecord(e: RawEpochRecord): EpochRecord {
  return { ...e, losses: losses(e.losses) };
}

/** Checks a crop and converts gray images to RGB; returns the raw form. */
function rawCrop(crop: unknown, label: string): RawTrainCrop {
  if (typeof crop !== 'object' || crop === null) throw new InvalidArgumentError(`${label} must be an object {image, mask}`);
  const { image, mask, score } = crop as Partial<TrainCrop>;
  if (!isTensorLike(image) || image.dtype !== 'uint8') throw new InvalidArgumentError(`${label}.image must be a uint8 Tensor [h, w, 3]`);
  if (!isTensorLike(mask) || mask.dtype !== 'uint8') throw new InvalidArgumentError(`${label}.mask must be a uint8 Tensor [h, w]`);
  const s = image.shape;
  let rgb: Tensor = image;
  if (s.length === 2 || (s.length === 3 && s[2] === 1)) {
    const [h, w] = [s[0]!, s[1]!];
    const src = image.data as Uint8Array;
    const data = new Uint8Array(h * w * 3);
    for (let i = 0; i < h * w; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = src[i]!;
    rgb = new Tensor('uint8', [h, w, 3], data);
  } else if (!(s.length === 3 && s[2] === 3)) throw new InvalidArgumentError(`${label}.image must have shape [h, w, 3] (got [${s.join(', ')}])`);
  const m = mask.shape;
  if (!(m.length === 2 || (m.length === 3 && m[2] === 1)) || m[0] !== rgb.shape[0] || m[1] !== rgb.shape[1])
    throw new InvalidArgumentError(`${label}.mask must have shape [${rgb.shape[0]}, ${rgb.shape[1]}] like its image (got [${m.join(', ')}])`);
  if (rgb.shape[0] === 0 || rgb.shape[1] === 0) throw new InvalidArgumentError(`${label} is empty`);
  const raw: RawTrainCrop = { image: rgb, mask };
  if (score !== undefined) {
    if (typeof score !== 'number') throw new InvalidArgumentError(`${label}.score must be a number`);
    raw.score = score;
  }
  return raw;
}

/**
 * What a model records beside its weights so that new images are treated like its
 * training images and images of no known type are flagged (bundle metadata
 * `anomalyncd.inference`; absent in bundles written before it existed).
 */
export interface InferenceRecord {
  /** The maps were used as binary maps (masks as maps) at `maskLevel`, not through MEBin. */
  masksAsMaps: boolean;
  maskLevel: number;
  /** The per-crop novelty score (see `noveltyOfLogits` in analysis/novelty). */
  noveltyScore: string;
  /** Image novelty above this is `unknown` (meaningful when `calibrationImages > 0`). */
  noveltyThreshold: number;
  /** The false-alarm rate the threshold was calibrated to. */
  falseAlarmRate: number;
  /** Held-out images the threshold was calibrated on; 0: not calibrated. */
  calibrationImages: number;
  /** Region-merging temperature used for image novelty. */
  tauAlpha: number;
  /** Score `prototype`: the fit crops' mean [CLS] feature (D values; empty: none recorded). */
  featureMean: number[];
  /** Score `prototype`: the cluster prototypes, P x D row-major (centred space). */
  prototypes: number[];
  /** Score `descriptor`: mean of the fit crops' region descriptors (Q values; empty: none recorded; analysis/descriptors). */
  descriptorMean: number[];
  /** Score `descriptor`: their standard deviations (Q values; the z-score scale). */
  descriptorScale: number[];
  /** Score `descriptor`: the fit crops' standardised descriptors, N x Q row-major (the kNN bank). */
  descriptorBank: number[];
}

/** A trained NCD model: backbone + heads in native memory. Call {@link dispose} when done. */
export class TrainedModel {
  /** The head METHOD.md §4.5 selects (lowest index among ties). */
  readonly selectedHead: number;
  /** Every head tied for the minimum last-epoch clustering loss. */
  readonly selectedHeads: readonly number[];
  /** Known classes (sorted labelled names) then the K novel ones. */
  readonly classNames: readonly string[];
  readonly knownClasses: readonly string[];
  readonly novelClasses: readonly string[];
  readonly config: TrainConfig;
  readonly arch: VitConfig;
  /** Per-epoch loss means (from the start of the run, resumed epochs included). */
  readonly history: readonly EpochRecord[];
  readonly epochsDone: number;
  /** The frozen backbone's checkpoint and its SHA-256 (null for a random init). */
  readonly backbone: { path: string | null; sha256: string | null };
  readonly searchRange?: [number, number];
  /** Notes from training / loading (random init, resume, ...). */
  readonly warnings: readonly string[];
  /**
   * Masks as maps and the novelty calibration, saved with the model (set by
   * discover(); absent for a plain fit() and for bundles written before it existed).
   */
  inference?: InferenceRecord;
  /** Where the model lives and `predict` runs: `'cpu'` or `'cuda:N'`. */
  readonly device: string;
  #handle: unknown;

  /** @internal */
  constructor(raw: RawTrainedModel) {
    this.#handle = raw.handle;
    this.selectedHeads = Object.freeze([...raw.selectedHeads]);
    this.selectedHead = raw.selectedHeads[0] ?? 0;
    this.classNames = Object.freeze([...raw.classNames]);
    this.knownClasses = Object.freeze(raw.classNames.slice(0, raw.numKnown));
    this.novelClasses = Object.freeze(raw.classNames.slice(raw.numKnown));
    this.config = { ...raw.config, classNames: [...raw.config.classNames] };
    this.arch = { ...raw.arch };
    this.history = Object.freeze(raw.history.map(epochRecord));
    this.epochsDone = raw.epochsDone;
    this.backbone = { ...raw.backbone };
    if (raw.searchRange) this.searchRange = [raw.searchRange[0], raw.searchRange[1]];
    this.warnings = Object.freeze([...raw.warnings]);
    if (raw.inference) this.inference = { ...raw.inference, featureMean: [...raw.inference.featureMean], prototypes: [...raw.inference.prototypes], descriptorMean: [...raw.inference.descriptorMean], descriptorScale: [...raw.inference.descriptorScale], descriptorBank: [...raw.inference.descriptorBank] };
    this.device = raw.device;
  }

  #live(): unknown {
    if (this.#handle === undefined) throw new InvalidArgumentError('The trained model has been disposed');
    return this.#handle;
  }

  /**
   * Writes the model as a training bundle (.safetensors with metadata), atomically.
   * By default the frozen backbone is referenced by path + SHA-256; with
   * `selfContained` (always for a random init) its weights are stored too.
   */
  async save(path: string, options: { selfContained?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('save() needs a file path');
    const raw = resolveOptions(saveTable, options);
    const handle = this.#live();
    const t = trainAddon();
    const inference: RawInferenceRecord | undefined = this.inference
      ? { ...this.inference, featureMean: [...this.inference.featureMean], prototypes: [...this.inference.prototypes], descriptorMean: [...this.inference.descriptorMean], descriptorScale: [...this.inference.descriptorScale], descriptorBank: [...this.inference.descriptorBank] }
      : undefined;
    await runJob(() => t.saveTrainedModel(handle, path, { ...raw, ...(inference ? { inference } : {}) }), options.signal ? { signal: options.signal } : {});
  }

  /** Novel-class probabilities of crops (test-time transform, METHOD.md §5.1 / §7 step 1). */
  async predict(crops: readonly TrainCrop[], options: PredictOptions = {}): Promise<Prediction> {
    if (!Array.isArray(crops)) throw new InvalidArgumentError('predict() needs an array of crops');
    optionsObject(options, 'predict(crops, options)');
    const opts = resolveOptions(predictTable(this.config.nHead), options);
    const raw = crops.map((c, i) => rawCrop(c, `crops[${i}]`));
    const handle = this.#live();
    const t = trainAddon();
    const jobOptions: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {};
    if (options.signal) jobOptions.signal = options.signal;
    if (options.onProgress) jobOptions.onProgress = options.onProgress;
    const r = await runJob((onProgress) => t.predict(handle, raw, opts, onProgress), jobOptions);
    const k = r.numNovel;
    const all = new Float32Array(r.probabilities);
    const out: Prediction = {
      probabilities: Array.from({ length: r.count }, (_, i) => all.subarray(i * k, (i + 1) * k)),
      head: r.head,
      classNames: [...this.novelClasses],
    };
    if (opts.logits && r.logits) {
      const l = new Float32Array(r.logits);
      out.logits = Array.from({ length: r.count }, (_, i) => l.subarray(i * k, (i + 1) * k));
    }
    if (opts.embeddings && r.embeddings && r.dim !== undefined) {
      const e = new Float32Array(r.embeddings);
      const d = r.dim;
      out.embeddings = Array.from({ length: r.count }, (_, i) => e.subarray(i * d, (i + 1) * d));
    }
    return out;
  }

  /** Frees the native weights now (pending predictions finish first). */
  dispose(): void {
    if (this.#handle === undefined) return;
    trainAddon().dispose(this.#handle);
    this.#handle = undefined;
  }
}

/** fit()'s options outside its field table. */
const FIT_OTHER_KEYS = ['signal', 'onProgress'] as const satisfies readonly (keyof FitOptions)[];
const everyFitKeyKnown: AllKeysKnown<FitOptions, keyof typeof fitTable | (typeof FIT_OTHER_KEYS)[number]> = true;
void everyFitKeyKnown;

/**
 * Trains the NCD model (METHOD.md §5) on worker threads and resolves with the trained
 * model. With `checkpointDir`, a resumable bundle is written after every epoch and a
 * run restarted with the same options and data continues after the last finished
 * epoch (bit-identical to an uninterrupted run on CPU with the same `threads`).
 */
export async function fit(dataset: TrainDataset, options: FitOptions): Promise<TrainedModel> {
  if (typeof dataset !== 'object' || dataset === null || !Array.isArray(dataset.unlabelled))
    throw new InvalidArgumentError('fit() needs a dataset { unlabelled: TrainCrop[], labelled?: LabelledCrop[] }');
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('fit() needs options with k (the number of novel classes)');
  if (dataset.unlabelled.length === 0) throw new InvalidArgumentError('fit() needs at least one unlabelled crop');
  rejectUnknownOptions('fit()', options, [...Object.keys(fitTable), ...FIT_OTHER_KEYS]);
  const o = resolveOptions(fitTable, options);
  const k = o.k;
  const labelled = dataset.labelled ?? [];
  if (!Array.isArray(labelled)) throw new InvalidArgumentError('dataset.labelled must be an array');
  const known = [...new Set(labelled.map((c, i) => {
    if (typeof c?.label !== 'string' || c.label.length === 0) throw new InvalidArgumentError(`dataset.labelled[${i}].label must be a class name`);
    return c.label;
  }))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const novel = o.novelClassNames ?? Array.from({ length: k }, (_, i) => `novel_${i}`);
  if (novel.length !== k) throw new InvalidArgumentError(`Option 'novelClassNames' must hold ${k} non-empty names`);
  const classNames = [...known, ...novel];
  if (new Set(classNames).size !== classNames.length) throw new InvalidArgumentError('Class names must be unique (known and novel together)');
  const index = new Map(known.map((n, i) => [n, i]));
  const backbone = o.backbone ?? null;
  if (backbone instanceof Backbone && o.arch !== undefined)
    throw new InvalidArgumentError("Option 'arch' cannot be combined with a loaded Backbone (it has its own architecture)");
  const raw: RawFitOptions = {
    ...trainConfigOf(o, classNames),
    arch: o.arch ?? null,
    backbone: backbone instanceof Backbone ? rawBackbone(backbone) : backbone,
    checkpointDir: o.checkpointDir ?? '',
    searchRange: o.searchRange ?? null,
    // a loaded Backbone trains where it lives unless told otherwise
    device: o.device ?? (backbone instanceof Backbone ? (backbone.device as DeviceRequest) : 'auto'),
    precision: o.precision,
  };
  const unlabelled = dataset.unlabelled.map((c, i) => rawCrop(c, `dataset.unlabelled[${i}]`));
  const lab = labelled.map((c, i) => {
    const r = rawCrop(c, `dataset.labelled[${i}]`);
    delete r.score;
    r.label = index.get(c.label)!;
    return r;
  });
  const t = trainAddon();
  const onProgress = options.onProgress;
  const onEvent = onProgress
    ? (e: RawTrainEvent) => {
        try {
          onProgress({ ...e, losses: losses(e.losses) });
        } catch {
          // A listener's exception must not break training.
        }
      }
    : undefined;
  const result = await runJob(
    (p: RawProgress | undefined) => t.fit(lab.length > 0 ? { unlabelled, labelled: lab } : { unlabelled }, raw, p, onEvent),
    options.signal ? { signal: options.signal } : {},
  );
  return new TrainedModel(result);
}

/**
 * Loads a training bundle written by {@link TrainedModel.save} (or a checkpoint
 * directory's `checkpoint.safetensors`). The frozen backbone comes from the bundle
 * when stored, else from the recorded checkpoint path (or `backbone`, whose SHA-256
 * must match the recorded one).
 */
export async function loadTrainedModel(
  path: string,
  options: { backbone?: string; device?: DeviceRequest; signal?: AbortSignal } = {},
): Promise<TrainedModel> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('loadTrainedModel() needs a file path');
  optionsObject(options, 'loadTrainedModel(path, options)');
  const o = resolveOptions(loadTable, options);
  const t = trainAddon();
  const raw = await runJob((p) => t.loadTrainedModel(path, { backbone: o.backbone ?? null, device: o.device }, p), options.signal ? { signal: options.signal } : {});
  return new TrainedModel(raw);
}

/** Decodes crop / mask file pairs natively (OpenCV; gray images become RGB; masks 8-bit gray). */
export async function readCropFiles(
  images: readonly string[],
  masks: readonly string[],
  options: { threads?: number; signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<{ image: Tensor<'uint8'>; mask: Tensor<'uint8'> }[]> {
  if (!Array.isArray(images) || !Array.isArray(masks) || images.length !== masks.length)
    throw new InvalidArgumentError('readCropFiles(images, masks) needs two arrays of equal length');
  const t = trainAddon();
  const jobOptions: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {};
  if (options.signal) jobOptions.signal = options.signal;
  if (options.onProgress) jobOptions.onProgress = options.onProgress;
  const items = await runJob((p) => t.readCrops([...images], [...masks], resolveOptions(readTable, options), p), jobOptions);
  return items.map((c) => ({
    image: new Tensor('uint8', [c.height, c.width, 3], new Uint8Array(c.image)),
    mask: new Tensor('uint8', [c.height, c.width], new Uint8Array(c.mask)),
  }));
}

async function sortedEntries(dir: string, dirs: boolean): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new IoError(`Cannot read folder '${dir}': ${(e as Error).message}`, { cause: e });
  }
  return entries
    .filter((e) => (dirs ? e.isDirectory() : e.isFile() && e.name.toLowerCase().endsWith('.png')))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Reads a labelled crop set laid out as `dir/images/<class>/*.png` with masks at
 * `dir/masks/<class>/<same name>` (METHOD.md §1.6). Classes are the sorted sub-folder
 * names; files are decoded natively.
 */
export async function loadLabelledFolder(
  dir: string,
  options: { threads?: number; signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<LabelledCrop[]> {
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError('loadLabelledFolder() needs a folder path');
  const imagesDir = join(dir, 'images');
  try {
    if (!(await stat(imagesDir)).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new IoError(`'${dir}' has no images/ folder (expected images/<class>/*.png and masks/<class>/*.png)`);
  }
  const images: string[] = [];
  const masks: string[] = [];
  const labels: string[] = [];
  for (const cls of await sortedEntries(imagesDir, true)) {
    for (const file of await sortedEntries(join(imagesDir, cls), false)) {
      const mask = join(dir, 'masks', cls, file);
      try {
        await stat(mask);
      } catch {
        throw new BadInputError(`Labelled crop '${join(imagesDir, cls, file)}' has no mask '${mask}'`);
      }
      images.push(join(imagesDir, cls, file));
      masks.push(mask);
      labels.push(cls);
    }
  }
  if (images.length === 0) throw new BadInputError(`'${imagesDir}' holds no <class>/*.png crops`);
  const crops = await readCropFiles(images, masks, options);
  return crops.map((c, i) => ({ image: c.image, mask: c.mask, label: labels[i]! }));
}

/**
 * Synchronous native building blocks (loss terms, schedules, SGD, the trainable
 * parameters) for tests, from the test-only addon. @internal
 */
export function trainKernels(): RawTrainKernels {
  const k = testingAddon().trainKernels;
  if (!k) throw new InvalidArgumentError('This build of anomalyncd has no training test kernels (built without libtorch)');
  return k;
}

/**
 * A labelled set D^l from a manifest CSV `image,map,label`: the maps go through
 * MEBin (one search range over the manifest) and cropping, and every crop of an
 * image gets that image's label. Rows without a label are refused.
 */
export async function loadLabelledManifest(
  csvPath: string,
  options: { threads?: number; signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<LabelledCrop[]> {
  const rows = await readManifest(csvPath);
  if (rows.length === 0) throw new BadInputError(`Labelled manifest '${csvPath}' lists no rows`);
  rows.forEach((r, i) => {
    if (r.label === undefined) throw new BadInputError(`Labelled manifest '${csvPath}' line ${i + 2} has no label (header image,map,label)`);
  });
  const regions = await extractRegions(
    rows.map((r) => r.imagePath),
    rows.map((r) => r.mapPath),
    {
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    },
  );
  return regions.items.flatMap((item, i) => item.crops.map((c) => ({ image: c.image!, mask: c.mask!, label: rows[i]!.label! })));
}

/** D^l from a folder (`images/<class>/`, `masks/<class>/`) or a manifest CSV (`image,map,label`). */
export async function loadLabelled(
  path: string,
  options: { threads?: number; signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<LabelledCrop[]> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('loadLabelled() needs a folder or manifest path');
  return path.toLowerCase().endsWith('.csv') ? loadLabelledManifest(path, options) : loadLabelledFolder(path, options);
}
