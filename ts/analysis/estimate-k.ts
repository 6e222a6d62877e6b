/**
 * The number of clusters from the data: the K whose k-means clustering has the
 * best mean silhouette.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { defaulted, int, type Schema } from '../core/options.js';
import { DEFAULT_TOL, KMEANS_RUN_OPTIONS, kmeansCore, type KMeansResult } from './kmeans.js';
import { prepare, resolveFor, type SampleMatrix } from './samples.js';
import { encodeLabels, silhouetteOf } from './silhouette.js';

/** Options of {@link estimateK}. */
export interface EstimateKOptions {
  /** Smallest K tried (default 2, at least 2). */
  kMin?: number;
  /** Largest K tried (default `min(10, n - 1)`, at most `n - 1`). */
  kMax?: number;
  /** PRNG seed of every k-means run (default 0). */
  seed?: number;
  /** k-means restarts per K (default 10). */
  nInit?: number;
  /** Maximum Lloyd iterations per run (default 300). */
  maxIter?: number;
}

/** One point of the K-selection curve. */
export interface KScore {
  k: number;
  /** Mean silhouette of the k-means clustering with this K (-1 when it collapsed to one cluster). */
  score: number;
}

/** Result of {@link estimateK}. */
export interface EstimateKResult {
  /** The K with the highest mean silhouette (the smaller K on ties). */
  k: number;
  /** Silhouette for every K tried, ascending K. */
  curve: KScore[];
  /** The k-means clustering found for the chosen K. */
  clustering: KMeansResult;
}

/**
 * Estimates the number of clusters: runs {@link kmeans} for every K in
 * `kMin..kMax` (same seed; each clustering is identical to what `kmeans`
 * returns with the same options) and picks the K with the highest mean
 * {@link silhouette} (the smaller K on ties). A clustering that collapses to
 * a single non-empty cluster scores -1. The silhouette is the only criterion
 * for now; a stability criterion (agreement across seeds or subsamples)
 * could be added later.
 *
 * @throws InvalidArgumentError for bad sizes or options (`2 <= kMin <= kMax <= n - 1`, so n >= 3).
 * @throws BadInputError when `data` holds NaN or infinity.
 */
export function estimateK(data: SampleMatrix, n: number, dim: number, options?: EstimateKOptions): EstimateKResult {
  const fn = 'estimateK';
  const o = resolveFor(fn, KMEANS_RUN_OPTIONS, options);
  const p = prepare(fn, data, n, dim);
  const nn = p.n;
  if (nn < 3) throw new InvalidArgumentError(`${fn}: needs at least 3 samples (got n = ${nn})`);
  // The K range depends on n and kMax's default on kMin: two small tables.
  const { kMin } = resolveFor(fn, { kMin: defaulted(int({ min: 2, max: nn - 1, default: 2 })) } satisfies Schema, options);
  const { kMax } = resolveFor(fn, { kMax: defaulted(int({ min: kMin, max: nn - 1, default: Math.max(kMin, Math.min(10, nn - 1)) })) } satisfies Schema, options);
  const curve: KScore[] = [];
  let best: { k: number; score: number; clustering: KMeansResult } | undefined;
  for (let k = kMin; k <= kMax; k++) {
    const clustering = kmeansCore(p, k, o.seed, o.nInit, o.maxIter, DEFAULT_TOL, 'auto');
    const { idx, count } = encodeLabels(fn, clustering.labels, nn);
    const score = count < 2 ? -1 : silhouetteOf(p, idx, count);
    curve.push({ k, score });
    if (best === undefined || score > best.score) best = { k, score, clustering };
  }
  return { k: best!.k, curve, clustering: best!.clustering };
}
