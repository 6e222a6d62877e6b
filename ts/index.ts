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
export * from './errors.js';
export { Tensor, isTensorLike, numel, dtypeOf, type DType, type DTypeOf, type DataOf, type TensorData } from './tensor.js';
export { readNpy, writeNpy, parseNpy, formatNpy } from './npy.js';
export { binarize, type BinarizeOptions, type BinarizeResult, type MebinMap, type MebinOptions, type MapInput } from './mebin.js';
export {
  extractRegions,
  type Box,
  type CropOptions,
  type ExtractRegionsOptions,
  type ImageInput,
  type RegionCrop,
  type RegionItem,
  type RegionsResult,
} from './regions.js';
export { generateSynthetic, DEFECT_TYPES, type SyntheticLabel, type SyntheticOptions, type SyntheticSample } from './synthetic.js';
export type { JobOptions, Progress } from './jobs.js';
export { nativeVersions } from './versions.js';
