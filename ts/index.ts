/**
 * anomalyncd — AnomalyNCD novel anomaly-class discovery on a libtorch native core.
 *
 * ```ts
 * import { extractRegions, generateSynthetic } from 'anomalyncd';
 * const samples = generateSynthetic();
 * const { items } = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map));
 * ```
 * @module
 */
export {
  AnomalyNCDError,
  InvalidArgumentError,
  BadInputError,
  IoError,
  CheckpointError,
  AbortError,
  InternalError,
  DeviceError,
  OutOfMemoryError,
  NativeLoadError,
  LimitError,
  type ErrorCode,
} from './core/errors.js';
export { getLimits, setLimits, DEFAULT_LIMITS, type Limits } from './core/limits.js';
export { Tensor, type DType, type DTypeOf, type DataOf, type TensorData } from './core/tensor.js';
export { readNpy, writeNpy, parseNpy, formatNpy } from './io/npy.js';
export { binarize, type BinarizeOptions, type BinarizeResult, type MebinMap, type MebinOptions, type MapInput } from './stages/mebin.js';
export {
  extractRegions,
  type Box,
  type CropOptions,
  type ExtractRegionsOptions,
  type ImageInput,
  type RegionCrop,
  type RegionItem,
  type RegionsResult,
} from './stages/regions.js';
export { generateSynthetic, DEFECT_TYPES, ALL_DEFECT_TYPES, type SyntheticLabel, type SyntheticOptions, type SyntheticSample } from './io/synthetic.js';
export type { JobOptions, Progress } from './core/jobs.js';
export { nativeVersions } from './native/versions.js';
export {
  loadBackbone,
  preprocess,
  Backbone,
  ARCH_PRESETS,
  type ArchPreset,
  type ArchSpec,
  type BackboneInfo,
  type EmbedCrop,
  type EmbedOptions,
  type LoadBackboneOptions,
  type Preprocessed,
  type VitConfig,
} from './stages/model.js';
export { evaluate, type ClassLabel, type ClusterMatch, type EvaluationResult } from './analysis/metrics.js';
export { kmeans, silhouette, estimateK, type SampleMatrix, type KMeansMethod, type KMeansOptions, type KMeansResult, type EstimateKOptions, type EstimateKResult, type KScore } from './analysis/cluster.js';
export { estimateKAsync, estimateKByMass, countMassK, K_METHODS, DEFAULT_K_METHOD, type KMethod, type FeatureKMethod, type KEstimate, type EstimateKAsyncOptions, type EstimateKByMassOptions, type LabelledFeatures } from './analysis/cluster.js';
export {
  fit,
  loadTrainedModel,
  loadLabelledFolder,
  loadLabelledManifest,
  loadLabelled,
  readCropFiles,
  TrainedModel,
  type EpochRecord,
  type FitOptions,
  type LabelledCrop,
  type PredictOptions,
  type Prediction,
  type TeacherTempOptions,
  type TrainConfig,
  type TrainCrop,
  type TrainDataset,
  type TrainEvent,
  type TrainLosses,
} from './stages/train.js';
export { loadDataset, type Dataset, type DatasetItem, type DatasetSpec, type MvtecDatasetSpec, type MtdDatasetSpec, type ManifestDatasetSpec } from './io/datasets.js';
export {
  renderReport,
  writeReport,
  buildReportData,
  type DiscoverReportOptions,
  type EmbeddingPoint,
  type KChoice,
  type RenderReportOptions,
  type ReportCluster,
  type ReportConfusion,
  type ReportData,
  type ReportEmbedding,
  type ReportFact,
  type ReportKCurve,
  type ReportMetrics,
  type ReportSample,
  type ReportSummary,
  type StageTiming,
} from './report/index.js';
export { mergeRegions, type RegionVote, type MergedPrediction } from './analysis/merge.js';
export {
  discover,
  predict,
  type PredictImagesOptions,
  type PredictedImage,
  type DiscoverItem,
  type DiscoverOptions,
  type DiscoverResult,
  type DiscoveredImage,
  type DiscoveredRegion,
} from './stages/discover.js';
export { regionDescriptor, descriptorNovelty, fitScaler, standardise, joinStandardised, DESCRIPTOR_NAMES, DESCRIPTOR_DIM, K_FEATURES, DEFAULT_K_FEATURES, type KFeatures, type DescriptorScaler, type FeatureBlock } from './analysis/descriptors.js';
export { auroc, calibrateThreshold, cropNovelty, featurePrototypes, imageNovelty, prototypeNovelty, NOVELTY_SCORES, DEFAULT_NOVELTY_SCORE, type NoveltyScore, type FeaturePrototypes } from './analysis/novelty.js';
export type { InferenceRecord } from './stages/train.js';
export type { MaskMapOptions } from './stages/regions.js';
export type { DeviceRequest, Precision } from './core/options.js';
