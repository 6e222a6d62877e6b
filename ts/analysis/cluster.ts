/**
 * Plain clustering tools for embeddings on the CPU: seeded k-means
 * (k-means++ init, Lloyd iterations; kmeans.ts), the mean silhouette
 * coefficient (silhouette.ts), and a silhouette-based choice of the number
 * of clusters (estimate-k.ts). They share samples.ts.
 *
 * ```ts
 * import { kmeans, estimateK } from 'anomalyncd';
 * const { k } = estimateK(features, n, 768, { seed: 0 });
 * const { labels, centroids, inertia } = kmeans(features, n, 768, k, { seed: 0 });
 * ```
 * All computations run in float64; results depend only on the inputs and the
 * seed (no `Math.random`).
 * @module
 */
export type { SampleMatrix } from './samples.js';
export { kmeans, type KMeansMethod, type KMeansOptions, type KMeansResult } from './kmeans.js';
export { silhouette } from './silhouette.js';
export { estimateK, type EstimateKOptions, type EstimateKResult, type KScore } from './estimate-k.js';
export {
  estimateKAsync,
  estimateKByMass,
  countMassK,
  K_METHODS,
  DEFAULT_K_METHOD,
  type KMethod,
  type FeatureKMethod,
  type KEstimate,
  type EstimateKAsyncOptions,
  type EstimateKByMassOptions,
  type LabelledFeatures,
} from './estimate-k-async.js';
