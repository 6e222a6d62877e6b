/**
 * Types of the raw native addon, kept apart from the public API (which
 * validates inputs and wraps these calls).
 * @internal
 * @module
 */
import type { BackboneInfo, VitConfig } from '../stages/model.js';
import type { InferenceRecord, TrainConfig } from '../stages/train.js';

/** A tensor as the addon reads it. */
export interface RawTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** What every Promise-returning native call hands back. */
export interface RawJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

/** Progress callback of native jobs. */
export type RawProgress = (done: number, total: number, stage: string) => void;

/**
 * MEBin's fields as every native call that binarises reads them: all present
 * (TS fills the defaults; the binding has none). C++: `mebin::Options`.
 */
export interface RawMebinOptions {
  sampleRate: number;
  minIntervalLen: number;
  erode: boolean;
  /** Explicit search range, or null for the set's own. */
  range: [number, number] | null;
  threads: number;
}

/** C++: `pipeline::BinarizeOptions`. */
export interface RawBinarizeOptions extends RawMebinOptions {
  returnBinary: boolean;
  oracle: boolean;
  /** Write each binary map as PNG to writeDir/names[i] ('' writes nothing). */
  writeDir: string;
  names: string[];
  /** 'cpu' | 'cuda' | 'cuda:N' | 'auto' (resolved natively: cpp/common/device.h). */
  device: string;
}

export interface RawMebinMap {
  threshold: number;
  count: number;
  sequence: number[];
  foreground: number;
  height: number;
  width: number;
  binary?: ArrayBuffer;
}

export interface RawMebinResult {
  searchRange: [number, number];
  /** Where MEBin ran: 'cpu' | 'cuda:N'. */
  device: string;
  maps: RawMebinMap[];
  msPerMap: number;
  warnings: string[];
}

/** C++: `crop::Options`. */
export interface RawCropOptions {
  padding: number;
  maxMergeDist: number;
  minCropSize: number;
}

/** C++: `pipeline::RegionsOptions`. */
export interface RawRegionsOptions extends RawMebinOptions, RawCropOptions {
  returnPixels: boolean;
  /** Write crops as PNG into this folder ('' writes nothing; relative names come back). */
  writeDir: string;
  /** Each map binarised at maskLevel (value >= maskLevel) and used as the binary map (no MEBin). */
  masksAsMaps: boolean;
  maskLevel: number;
  /** Compute each crop's region descriptor (C++ crop/descriptor.h). */
  descriptors: boolean;
  /** MEBin's device request. */
  device: string;
}

export interface RawCrop {
  box: [number, number, number, number];
  maskArea: number;
  score: number;
  width: number;
  height: number;
  channels: number;
  image?: ArrayBuffer;
  mask?: ArrayBuffer;
  imageFile?: string;
  maskFile?: string;
  /** With `descriptors`: the crop's region descriptor (17 values). */
  descriptor?: Float64Array;
}

export interface RawRegionsItem extends Omit<RawMebinMap, 'binary'> {
  imageHeight: number;
  imageWidth: number;
  crops: RawCrop[];
}

export interface RawRegionsResult {
  searchRange: [number, number];
  /** Where MEBin ran: 'cpu' | 'cuda:N'. */
  device: string;
  items: RawRegionsItem[];
  msPerMap: number;
  msPerImage: number;
  /** With `descriptors`: mean descriptor compute time per image (ms). */
  descriptorMsPerImage: number;
  warnings: string[];
}

export interface RawRegionsInput {
  image: string | RawTensor;
  map: string | RawTensor;
  /** File stem used for written crops. */
  name: string;
}

/** Architecture as the addon reads and writes it: every field (TS fills them); the public type as is. */
export type RawVitConfig = VitConfig;

/** Where a native backbone's weights and architecture came from (the public type as is). */
export type RawBackboneInfo = BackboneInfo;

/** Options of the native embed/embedCrops. */
export interface RawEmbedOptions {
  threads: number;
  batchSize: number;
  /** 'fp32' | 'bf16'. */
  precision: string;
}

/** The native Backbone handle. */
export interface RawBackbone {
  readonly config: RawVitConfig;
  readonly info: RawBackboneInfo;
  readonly disposed: boolean;
  embed(images: RawTensor, masks: RawTensor | null, options: RawEmbedOptions, onProgress?: RawProgress): RawJob<{ shape: number[]; data: ArrayBuffer }>;
  embedCrops(
    crops: readonly { image: RawTensor; mask: RawTensor | null }[],
    options: RawEmbedOptions,
    onProgress?: RawProgress,
  ): RawJob<{ shape: number[]; data: ArrayBuffer }>;
  dispose(): void;
}

/** Exports every addon has. */
export interface AddonBase {
  setErrorClass(factory: (code: string, message: string) => Error): void;
  /** Process-wide size limits (cpp/common/limits.h); each addon has its own copy. */
  getLimits(): { maxPixels: number; maxCrops: number; maxTensorElements: number };
  setLimits(limits: { maxPixels: number; maxCrops: number; maxTensorElements: number }): void;
}

/** anomalyncd_core.node: the OpenCV stages (never loads libtorch). */
export interface CoreAddon extends AddonBase {
  binarize(maps: (string | RawTensor)[], options: RawBinarizeOptions, onProgress?: RawProgress): RawJob<RawMebinResult>;
  extractRegions(items: RawRegionsInput[], options: RawRegionsOptions, onProgress?: RawProgress): RawJob<RawRegionsResult>;
  versions: { opencv: string };
}

/** anomalyncd_model.node: the libtorch stages (model, training). */
export interface ModelAddon extends AddonBase {
  loadBackbone?(
    path: string | null,
    options: { arch: RawVitConfig | null; device: string; precision: string; seed: number },
    onProgress?: RawProgress,
  ): RawJob<RawBackbone>;
  preprocess?(
    crops: readonly RawTensor[],
    masks: readonly (RawTensor | null)[],
    options: { threads: number },
    onProgress?: RawProgress,
  ): RawJob<{ count: number; images: ArrayBuffer; masks: ArrayBuffer }>;
  presets?(): Record<string, RawVitConfig>;
  /** Counters for tests: state-dict reads by this addon. */
  stats?(): { checkpointReads: number };
  torch?: {
    cudaAvailable: boolean;
    /** libtorch was built with CUDA. */
    cudaBuilt: boolean;
    /** This CPU has bf16 dot products (AVX512-BF16 or AMX). */
    cpuBf16Dot: boolean;
    interopThreads: number;
    intraopThreads: number;
    parallelInfo: string;
  };
  versions: { libtorch: string; opencv: string };
  /** What the addon was built against and finds at run time (binding/build_info.cc). */
  buildInfo?(): RawBuildInfo;
}

/** binding/build_info.cc: versions from the headers built with; OpenBLAS and CUDA as found in the process. */
export interface RawBuildInfo {
  libtorch: string;
  opencv: string;
  cxx11Abi?: boolean;
  compiler: string;
  openblas: { config: string | null; core: string | null; threads: number | null } | null;
  cuda: { libtorchCuda: boolean; kernels: boolean; available: boolean; devices: number; runtimeVersion: number | null };
  threads: { intraop: number; interop: number; parallelInfo: string };
}

/** anomalyncd_testing.node: synchronous building blocks for tests on small inputs (never shipped). */
export interface TestingAddon extends AddonBase {
  kernels: {
    selectThreshold(
      counts: number[],
      range: [number, number],
      options?: Pick<RawMebinOptions, 'sampleRate' | 'minIntervalLen' | 'erode'>,
    ): { est: number; threshold: number; endIndex: number; fallback: boolean };
    mergeBoxes(boxes: number[][], S: number, options?: RawCropOptions): [number, number, number, number][];
    regionBoxes(binary: RawTensor, options?: RawCropOptions): [number, number, number, number][];
    resizeBicubicF32(src: RawTensor, outH: number, outW: number): Float32Array;
    resizeBilinearU8(src: RawTensor, outH: number, outW: number): Uint8Array;
    /** cpp/common/device.h resolve() against the given capabilities. */
    resolveDevice(request: string, caps: { cudaBuilt: boolean; deviceCount: number }): string;
  };
  /** The training stage's kernels (binding/testing/train_kernels.cc), when the model is built. */
  trainKernels?: RawTrainKernels;
}

// ---- training (ts/stages/train.ts casts the model addon's `train` export to RawTrainAddon) ----

export interface RawTrainCrop {
  image: RawTensor;
  mask: RawTensor;
  score?: number;
  label?: number;
}

export interface RawTrainLosses {
  total: number;
  infoNce: number;
  supCon: number;
  ce: number[];
  distill: number[];
  memax: number[];
  cluster: number[];
}

export interface RawTrainEvent {
  type: 'batch' | 'epoch';
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  losses: RawTrainLosses;
  lr: number;
  teacherTemp: number;
  ms: number;
  augmentMs: number;
  waitMs: number;
  modelMs: number;
  skipped: number;
  rows: number;
}

/** The core's TrainConfig, every field (cpp/train/config.h visitFields, same names and order): the public type as is. */
export type RawTrainConfig = TrainConfig;

export interface RawFitOptions extends RawTrainConfig {
  /** A loaded backbone (used as is), a checkpoint path (loaded by fit), or null (random init). */
  backbone: RawBackbone | string | null;
  arch: RawVitConfig | null;
  /** '': no per-epoch bundles. */
  checkpointDir: string;
  searchRange: [number, number] | null;
  /** 'cpu' | 'cuda' | 'cuda:N' | 'auto'. */
  device: string;
  /** 'fp32' | 'bf16'. */
  precision: string;
}

export interface RawEpochRecord {
  epoch: number;
  batches: number;
  skipped: number;
  lr: number;
  teacherTemp: number;
  losses: RawTrainLosses;
  ms: number;
  augmentMs: number;
  waitMs: number;
  modelMs: number;
}

export interface RawTrainedModel {
  handle: unknown;
  config: RawTrainConfig;
  arch: RawVitConfig;
  classNames: string[];
  numKnown: number;
  epochsDone: number;
  selectedHeads: number[];
  history: RawEpochRecord[];
  backbone: { path: string | null; sha256: string | null };
  searchRange?: [number, number];
  /** Bundle metadata anomalyncd.inference (cpp/train/inference_record.h), when recorded. */
  inference?: RawInferenceRecord;
  dataFingerprint: string;
  /** Where the model lives: 'cpu' | 'cuda:N'. */
  device: string;
  warnings: string[];
}

/** cpp/train/inference_record.h: masks as maps and the novelty calibration (the public record is the raw one). */
export type RawInferenceRecord = InferenceRecord;

export interface RawPrediction {
  count: number;
  numNovel: number;
  head: number;
  probabilities: ArrayBuffer;
  dim?: number;
  embeddings?: ArrayBuffer;
  /** With `logits`: count * numNovel raw cosine logits of the head. */
  logits?: ArrayBuffer;
}

export interface RawDecodedCrop {
  height: number;
  width: number;
  image: ArrayBuffer;
  mask: ArrayBuffer;
}

export interface RawTensorOut {
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface RawLossResult extends RawTrainLosses {
  gradZ: RawTensorOut;
  gradLogits: RawTensorOut;
}

export interface RawPredictOptions {
  /** -1: the selected head. */
  head: number;
  embeddings: boolean;
  logits: boolean;
  threads: number;
  batchSize: number;
  /** 'fp32' | 'bf16'. */
  precision: string;
}

export interface RawTrainAddon {
  fit(
    dataset: { unlabelled: RawTrainCrop[]; labelled?: RawTrainCrop[] },
    options: RawFitOptions,
    onProgress?: RawProgress,
    onEvent?: (event: RawTrainEvent) => void,
  ): RawJob<RawTrainedModel>;
  loadTrainedModel(path: string, options: { backbone: string | null; device: string }, onProgress?: RawProgress): RawJob<RawTrainedModel>;
  saveTrainedModel(handle: unknown, path: string, options: { selfContained: boolean; inference?: RawInferenceRecord }): RawJob<undefined>;
  predict(handle: unknown, crops: RawTrainCrop[], options: RawPredictOptions, onProgress?: RawProgress): RawJob<RawPrediction>;
  dispose(handle: unknown): void;
  readCrops(images: string[], masks: string[], options: { threads: number }, onProgress?: RawProgress): RawJob<RawDecodedCrop[]>;
}

/** The test addon's `trainKernels`: synchronous building blocks for tests on small inputs. */
export interface RawTrainKernels {
  losses(
    inputs: { z: RawTensor; logits: RawTensor; labels: RawTensor; plc?: RawTensor },
    options: {
      numKnown: number;
      teacherTemp?: number;
      studentTemp?: number;
      infoNceTemp?: number;
      supConTemp?: number;
      supConBaseTemp?: number;
      supWeight?: number;
      memaxWeight?: number;
    },
  ): RawLossResult;
  teacherTargets(teacher: RawTensor, teacherTemp: number, numKnown: number, plc?: RawTensor): RawTensorOut;
  teacherTemperatures(epochs: number, schedule?: { warmupTemp?: number; finalTemp?: number; warmupEpochs?: number; repeatTimes?: number }): number[];
  cosineLr(epochs: number, lr: number, etaMinFactor?: number): number[];
  sgd(
    params: { name: string; value: RawTensor; grads: RawTensor[] }[],
    options: { lrs: number[]; momentum?: number; weightDecay?: number },
  ): { name: string; value: RawTensorOut; momentum?: RawTensorOut; decay: boolean }[];
  /** `config`: every field (see nativeTrainConfig in ts/stages/train.ts). */
  trainableParameters(arch: Partial<RawVitConfig>, config: RawTrainConfig): { name: string; shape: number[]; decay: boolean }[];
}
