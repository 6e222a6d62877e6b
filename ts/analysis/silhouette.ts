/**
 * The mean silhouette coefficient, as scikit-learn's `silhouette_score`.
 * @module
 */
import { InvalidArgumentError, shown } from '../core/errors.js';
import { pairwiseSum } from './metrics.js';
import { dot, getGram, GRAM_MAX_N, prepare, type Prepared, type SampleMatrix } from './samples.js';

/** Densifies labels to 0..L-1 (ascending label order). */
export function encodeLabels(fn: string, labels: unknown, n: number): { idx: Int32Array; count: number } {
  if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<number>).length !== 'number')
    throw new InvalidArgumentError(`${fn}: 'labels' must be an array of integers`);
  const lab = labels as ArrayLike<unknown>;
  if (lab.length !== n) throw new InvalidArgumentError(`${fn}: 'labels' has ${lab.length} entries, expected n = ${n}`);
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = lab[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidArgumentError(`${fn}: 'labels[${i}]' must be an integer (got ${shown(v)})`);
    values.push(v);
  }
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  const map = new Map<number, number>();
  distinct.forEach((v, i) => map.set(v, i));
  return { idx: Int32Array.from(values, (v) => map.get(v)!), count: distinct.length };
}

/**
 * Mean silhouette from inner products, as scikit-learn: Euclidean distances
 * `sqrt(max(0, -2 x.y + |x|^2 + |y|^2))` (0 on the diagonal), per-cluster
 * sums in sample order, `(b - a) / max(a, b)` with NaN (singletons) -> 0, and
 * NumPy's pairwise mean.
 */
export function silhouetteOf(p: Prepared, idx: Int32Array, nLabels: number): number {
  const { x, xx, n, dim } = p;
  const g = n <= GRAM_MAX_N ? getGram(p) : undefined;
  const freq = new Float64Array(nLabels);
  for (let i = 0; i < n; i++) freq[idx[i]!]! += 1;
  const sums = new Float64Array(nLabels);
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    const xi = xx[i]!;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const gij = g !== undefined ? g[i * n + j]! : dot(x, i * dim, x, j * dim, dim);
      sums[idx[j]!]! += Math.sqrt(Math.max(0, (-2 * gij + xi) + xx[j]!));
    }
    const own = idx[i]!;
    const a = sums[own]! / (freq[own]! - 1);
    let b = Infinity;
    for (let l = 0; l < nLabels; l++) {
      if (l === own) continue;
      const m = sums[l]! / freq[l]!;
      if (m < b) b = m;
    }
    const v = (b - a) / Math.max(a, b);
    s[i] = Number.isNaN(v) ? 0 : v; // singleton clusters (0/0) and a = b = 0 give 0, as sklearn
  }
  return pairwiseSum(s, 0, n) / n;
}

/**
 * Mean silhouette coefficient (Euclidean), as scikit-learn's
 * `silhouette_score`: per sample `(b - a) / max(a, b)` with `a` the mean
 * distance to the other members of its cluster and `b` the lowest mean
 * distance to another cluster; 0 for samples in clusters of size 1.
 * O(n^2 dim) time.
 *
 * @param labels cluster id per sample (any integers; 2..n-1 distinct values).
 * @throws InvalidArgumentError for bad sizes, or fewer than 2 / more than n-1 clusters.
 * @throws BadInputError when `data` holds NaN or infinity.
 */
export function silhouette(data: SampleMatrix, n: number, dim: number, labels: ArrayLike<number>): number {
  const fn = 'silhouette';
  const p = prepare(fn, data, n, dim);
  const { idx, count } = encodeLabels(fn, labels, p.n);
  if (count < 2 || count > p.n - 1)
    throw new InvalidArgumentError(`${fn}: the number of distinct labels is ${count}; valid values are 2 to n - 1 = ${p.n - 1}`);
  return silhouetteOf(p, idx, count);
}
