/**
 * Plain clustering tools for embeddings on the CPU: seeded k-means
 * (k-means++ init, Lloyd iterations), the mean silhouette coefficient, and
 * a silhouette-based choice of the number of clusters.
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
import { BadInputError, InvalidArgumentError } from '../core/errors.js';
import { pairwiseSum } from './metrics.js';

/** Row-major `n x dim` samples. */
export type SampleMatrix = Float32Array | Float64Array;

/** Options of {@link kmeans}. */
export interface KMeansOptions {
  /** PRNG seed (uint32, default 0). The same seed gives the same result. */
  seed?: number;
  /** Number of k-means++ restarts; the run with the lowest inertia wins (default 10). */
  nInit?: number;
  /** Maximum Lloyd iterations per run (default 300). */
  maxIter?: number;
  /**
   * Relative tolerance as scikit-learn: a run stops when the summed squared
   * centroid shift is `<= tol * mean(per-feature variance)` (default 1e-4),
   * or when no label changes.
   */
  tol?: number;
  /**
   * Lloyd implementation (default 'auto'): 'direct' works on coordinates
   * (~ n k dim per iteration); 'gram' precomputes the n x n inner products
   * (n^2 dim / 2 once, then ~ n^2 per iteration; n <= 2048) and is much faster
   * for high-dimensional embeddings. 'auto' decides from n, dim, k and nInit
   * only. Both run the same algorithm and differ only by rounding.
   */
  method?: KMeansMethod;
}

/** Result of {@link kmeans}. */
export interface KMeansResult {
  /** Cluster of each sample, 0..k-1. */
  labels: Int32Array;
  /** Row-major `k x dim` centroids. */
  centroids: Float32Array;
  /** Sum of squared Euclidean distances of the samples to their centroid (float64 centroids, before rounding to float32). */
  inertia: number;
  /** Lloyd iterations of the winning run. */
  iterations: number;
}

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

// ---------------------------------------------------------------------------
// argument checks
// ---------------------------------------------------------------------------

function checkIntArg(fn: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(`${fn}: '${name}' must be an integer in ${min}..${max} (got ${String(value)})`);
  return value;
}

function checkOptions(fn: string, options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`${fn}: 'options' must be an object`);
  return options as Record<string, unknown>;
}

function optInt(fn: string, o: Record<string, unknown>, name: string, def: number, min: number, max: number): number {
  const v = o[name];
  return v === undefined ? def : checkIntArg(fn, `options.${name}`, v, min, max);
}

/** Validates the sample matrix and returns a float64 copy. */
function checkData(fn: string, data: unknown, n: unknown, dim: unknown): { x: Float64Array; n: number; dim: number } {
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array))
    throw new InvalidArgumentError(`${fn}: 'data' must be a Float32Array or Float64Array`);
  const nn = checkIntArg(fn, 'n', n, 1, 2 ** 31 - 1);
  const dd = checkIntArg(fn, 'dim', dim, 1, 2 ** 31 - 1);
  if (data.length !== nn * dd)
    throw new InvalidArgumentError(`${fn}: 'data' has ${data.length} values, expected n*dim = ${nn}*${dd} = ${nn * dd}`);
  const x = Float64Array.from(data);
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]!)) throw new BadInputError(`${fn}: 'data' holds a non-finite value at index ${i} (sample ${Math.floor(i / dd)})`);
  return { x, n: nn, dim: dd };
}

// ---------------------------------------------------------------------------
// PRNG: sfc32 seeded through splitmix32
// ---------------------------------------------------------------------------

/** Small fast counter PRNG; `next()` is a uniform double in [0, 1) with 53 random bits. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  next(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }
}

// ---------------------------------------------------------------------------
// k-means
// ---------------------------------------------------------------------------

function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  let i = xo, j = yo;
  const end = xo + dim - (dim % 8);
  for (; i < end; i += 8, j += 8) {
    s0 += x[i]! * y[j]!;
    s1 += x[i + 1]! * y[j + 1]!;
    s2 += x[i + 2]! * y[j + 2]!;
    s3 += x[i + 3]! * y[j + 3]!;
    s4 += x[i + 4]! * y[j + 4]!;
    s5 += x[i + 5]! * y[j + 5]!;
    s6 += x[i + 6]! * y[j + 6]!;
    s7 += x[i + 7]! * y[j + 7]!;
  }
  const stop = xo + dim;
  for (; i < stop; i++, j++) s0 += x[i]! * y[j]!;
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

function sqDist(x: Float64Array, xo: number, y: Float64Array, yo: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = xo, j = yo;
  const end = xo + dim - (dim % 4);
  for (; i < end; i += 4, j += 4) {
    const d0 = x[i]! - y[j]!, d1 = x[i + 1]! - y[j + 1]!, d2 = x[i + 2]! - y[j + 2]!, d3 = x[i + 3]! - y[j + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  const stop = xo + dim;
  for (; i < stop; i++, j++) {
    const d = x[i]! - y[j]!;
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

function rowNorms(x: Float64Array, rows: number, dim: number, out = new Float64Array(rows)): Float64Array {
  for (let i = 0; i < rows; i++) out[i] = dot(x, i * dim, x, i * dim, dim);
  return out;
}

/** Largest n for which the n x n inner-product matrix is materialised (32 MiB). */
const GRAM_MAX_N = 2048;

/** Inner products of all sample pairs (n x n, symmetric, bitwise equal to `dot`). */
function gramMatrix(x: Float64Array, n: number, dim: number): Float64Array {
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = dot(x, i * dim, x, j * dim, dim);
      g[i * n + j] = v;
      g[j * n + i] = v;
    }
  }
  return g;
}

function localTrials(k: number): number {
  return 2 + Math.floor(Math.log(k));
}

/**
 * Whether k-means works on the n x n inner-product matrix (cost ~ n^2 dim / 2
 * once, then n^2 per iteration) rather than on coordinates (~ n k dim per
 * iteration and k-means++ step): a function of the sizes only, so a result
 * never depends on how it was reached.
 */
function preferGram(n: number, dim: number, k: number, nInit: number): boolean {
  if (n > GRAM_MAX_N) return false;
  return n * dim / 2 + 10 * nInit * n < nInit * k * dim * (localTrials(k) + 10);
}

/**
 * Greedy k-means++ (as scikit-learn: 2 + floor(ln k) candidates per step, keep
 * the one lowering the potential most). `sq(i, p)` is the squared distance
 * between samples i and p. Returns the chosen sample indices.
 */
function kmeansPlusPlus(n: number, k: number, rng: Rng, sq: (i: number, p: number) => number): Int32Array {
  const picks = new Int32Array(k);
  const trials = localTrials(k);
  const first = rng.int(n);
  picks[0] = first;
  const closest = new Float64Array(n);
  let pot = 0;
  for (let i = 0; i < n; i++) pot += closest[i] = sq(i, first);
  const cumsum = new Float64Array(n);
  const cand = new Float64Array(n);
  const best = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) cumsum[i] = acc += closest[i]!;
    let bestPot = Infinity;
    let bestId = 0;
    for (let tr = 0; tr < trials; tr++) {
      const r = rng.next() * pot;
      // searchsorted(cumsum, r, side='left'), clipped
      let lo = 0, hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumsum[mid]! < r) lo = mid + 1;
        else hi = mid;
      }
      const id = Math.min(lo, n - 1);
      let p = 0;
      for (let i = 0; i < n; i++) {
        const d = sq(i, id);
        const m = d < closest[i]! ? d : closest[i]!;
        cand[i] = m;
        p += m;
      }
      if (p < bestPot) {
        bestPot = p;
        bestId = id;
        best.set(cand);
      }
    }
    picks[c] = bestId;
    closest.set(best);
    pot = bestPot;
  }
  return picks;
}

/**
 * Counts members and re-seeds empty clusters at the samples farthest from
 * their centroid (moving each such sample into the empty cluster, unless that
 * would empty its own cluster). When no sample can move (fewer distinct points
 * than k), the empty centroid is placed on the farthest sample without moving
 * it: `stuck[j]` is that sample, else -1.
 */
function relocateEmpty(n: number, k: number, labels: Int32Array, dist: Float64Array, counts: Float64Array, stuck: Int32Array): void {
  counts.fill(0);
  stuck.fill(-1);
  for (let i = 0; i < n; i++) counts[labels[i]!]! += 1;
  let empties = 0;
  for (let j = 0; j < k; j++) if (counts[j] === 0) empties++;
  if (empties === 0) return;
  // farthest samples first (ties: lower index first)
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => dist[b]! - dist[a]! || a - b);
  let o = 0;
  for (let j = 0; j < k; j++) {
    if (counts[j] !== 0) continue;
    while (o < n && (counts[labels[order[o]!]!]! <= 1 || dist[order[o]!]! <= 0)) o++;
    if (o >= n) {
      stuck[j] = order[0]!;
      continue;
    }
    const i = order[o++]!;
    counts[labels[i]!]! -= 1;
    counts[j] = 1;
    labels[i] = j;
    dist[i] = 0;
  }
}

interface Run {
  labels: Int32Array;
  inertia: number;
  iterations: number;
  /** Final centroids (k x dim, float64). */
  centers: Float64Array;
}

/** Nearest centre from `score[j] = |c_j|^2 - 2 x.c_j`; returns whether the label changed. */
function pick(i: number, k: number, cc: Float64Array, prod: (j: number) => number, xx: number, labels: Int32Array, dist: Float64Array): boolean {
  let bestJ = 0;
  let bestD = Infinity;
  for (let j = 0; j < k; j++) {
    const d = cc[j]! - 2 * prod(j);
    if (d < bestD) {
      bestD = d;
      bestJ = j;
    }
  }
  dist[i] = Math.max(0, bestD + xx);
  if (labels[i] === bestJ) return false;
  labels[i] = bestJ;
  return true;
}

function finishRun(x: Float64Array, n: number, dim: number, labels: Int32Array, centers: Float64Array, iterations: number): Run {
  let inertia = 0;
  for (let i = 0; i < n; i++) inertia += sqDist(x, i * dim, centers, labels[i]! * dim, dim);
  return { labels, inertia, iterations, centers };
}

/**
 * The Lloyd iteration both variants share. Each pass assigns every sample to
 * its nearest centre (`norms()`: |c_j|^2 of the current centres, `product(i, j)`:
 * x_i . c_j) and stops once no label changes (after the first pass); else it
 * re-seeds empty clusters ({@link relocateEmpty}) and `update` moves the
 * centres to the new means, returning their total squared shift, which stops
 * the loop when within `tolAbs`. The labels end consistent with the final centres.
 */
function lloydIterate(
  n: number, k: number, xx: Float64Array, maxIter: number, tolAbs: number,
  norms: () => Float64Array,
  product: (i: number, j: number) => number,
  update: (labels: Int32Array, counts: Float64Array, stuck: Int32Array) => number,
): { labels: Int32Array; iterations: number } {
  const labels = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  const counts = new Float64Array(k);
  const stuck = new Int32Array(k);
  const assign = (): number => {
    const cc = norms();
    let changed = 0;
    for (let i = 0; i < n; i++) if (pick(i, k, cc, (j) => product(i, j), xx[i]!, labels, dist)) changed++;
    return changed;
  };
  let iterations = 0;
  let strict = false;
  for (let it = 0; it < maxIter; it++) {
    const changed = assign();
    iterations = it + 1;
    if (changed === 0 && it > 0) {
      strict = true;
      break;
    }
    relocateEmpty(n, k, labels, dist, counts, stuck);
    if (update(labels, counts, stuck) <= tolAbs) break;
  }
  if (!strict) assign(); // labels consistent with the final centres
  return { labels, iterations };
}

/** Lloyd on coordinates. */
function lloydDirect(
  x: Float64Array, xx: Float64Array, n: number, dim: number, k: number,
  init: Int32Array, maxIter: number, tolAbs: number,
): Run {
  let centers = new Float64Array(k * dim);
  let next = new Float64Array(k * dim);
  for (let j = 0; j < k; j++) centers.set(x.subarray(init[j]! * dim, init[j]! * dim + dim), j * dim);
  const cc = new Float64Array(k);
  const norms = (): Float64Array => {
    rowNorms(centers, k, dim, cc);
    return cc;
  };
  const product = (i: number, j: number): number => dot(x, i * dim, centers, j * dim, dim);
  const update = (labels: Int32Array, counts: Float64Array, stuck: Int32Array): number => {
    next.fill(0);
    for (let i = 0; i < n; i++) {
      const co = labels[i]! * dim, xo = i * dim;
      for (let t = 0; t < dim; t++) next[co + t]! += x[xo + t]!;
    }
    let shift = 0;
    for (let j = 0; j < k; j++) {
      const co = j * dim;
      if (stuck[j]! >= 0) next.set(x.subarray(stuck[j]! * dim, stuck[j]! * dim + dim), co);
      else {
        const inv = 1 / counts[j]!;
        for (let t = 0; t < dim; t++) next[co + t]! *= inv;
      }
      shift += sqDist(next, co, centers, co, dim);
    }
    [centers, next] = [next, centers];
    return shift;
  };
  const { labels, iterations } = lloydIterate(n, k, xx, maxIter, tolAbs, norms, product, update);
  return finishRun(x, n, dim, labels, centers, iterations);
}

/**
 * Lloyd on the inner-product matrix G: a centre is the mean of a sample set
 * (or one sample), so x_i . c_j and |c_j|^2 are sums of G entries. Exact
 * Lloyd, only the arithmetic differs from {@link lloydDirect}.
 */
function lloydGram(
  x: Float64Array, g: Float64Array, xx: Float64Array, n: number, dim: number, k: number,
  init: Int32Array, maxIter: number, tolAbs: number,
): Run {
  // current centres: single[j] >= 0 -> sample single[j]; else mean of {m : member[m] == j} (size size[j])
  let single = Int32Array.from(init);
  let member = new Int32Array(n).fill(-1);
  let size = new Float64Array(k);
  let prod = new Float64Array(n * k); // x_i . c_j
  let nextProd = new Float64Array(n * k);
  let cc = new Float64Array(k);
  let nextCc = new Float64Array(k);
  const acc = new Float64Array(k);
  const products = (mem: Int32Array, sz: Float64Array, sgl: Int32Array, out: Float64Array, norms: Float64Array): void => {
    for (let i = 0; i < n; i++) {
      acc.fill(0);
      const row = i * n;
      for (let m = 0; m < n; m++) {
        const c = mem[m]!;
        if (c >= 0) acc[c]! += g[row + m]!;
      }
      for (let j = 0; j < k; j++) out[i * k + j] = sgl[j]! >= 0 ? g[row + sgl[j]!]! : acc[j]! / sz[j]!;
    }
    norms.fill(0);
    for (let m = 0; m < n; m++) {
      const c = mem[m]!;
      if (c >= 0 && sgl[c]! < 0) norms[c]! += out[m * k + c]!;
    }
    for (let j = 0; j < k; j++) norms[j] = sgl[j]! >= 0 ? out[sgl[j]! * k + j]! : norms[j]! / sz[j]!;
  };
  products(member, size, single, prod, cc);
  const cross = new Float64Array(k);
  const update = (labels: Int32Array, counts: Float64Array, stuck: Int32Array): number => {
    const newMember = Int32Array.from(labels);
    products(newMember, counts, stuck, nextProd, nextCc);
    // shift_j = |c_new|^2 + |c_old|^2 - 2 c_new . c_old, with c_new . c_old from the old products
    cross.fill(0);
    for (let m = 0; m < n; m++) cross[newMember[m]!]! += prod[m * k + newMember[m]!]!;
    let shift = 0;
    for (let j = 0; j < k; j++) {
      const c = stuck[j]! >= 0 ? prod[stuck[j]! * k + j]! : cross[j]! / counts[j]!;
      shift += Math.max(0, nextCc[j]! + cc[j]! - 2 * c);
    }
    [prod, nextProd] = [nextProd, prod];
    [cc, nextCc] = [nextCc, cc];
    single = Int32Array.from(stuck);
    member = newMember;
    size = Float64Array.from(counts);
    return shift;
  };
  const { labels, iterations } = lloydIterate(n, k, xx, maxIter, tolAbs, () => cc, (i, j) => prod[i * k + j]!, update);
  // explicit centroids of the final centres
  const centers = new Float64Array(k * dim);
  for (let m = 0; m < n; m++) {
    const c = member[m]!;
    if (c < 0 || single[c]! >= 0) continue;
    const co = c * dim, xo = m * dim;
    for (let t = 0; t < dim; t++) centers[co + t]! += x[xo + t]!;
  }
  for (let j = 0; j < k; j++) {
    const co = j * dim;
    if (single[j]! >= 0) centers.set(x.subarray(single[j]! * dim, single[j]! * dim + dim), co);
    else for (let t = 0; t < dim; t++) centers[co + t]! /= size[j]!;
  }
  return finishRun(x, n, dim, labels, centers, iterations);
}

/** Which Lloyd implementation {@link kmeans} uses. */
export type KMeansMethod = 'auto' | 'gram' | 'direct';

interface Prepared {
  x: Float64Array;
  xx: Float64Array;
  n: number;
  dim: number;
  /** Lazily built inner-product matrix (n <= GRAM_MAX_N). */
  gram?: Float64Array;
}

function getGram(p: Prepared): Float64Array {
  p.gram ??= gramMatrix(p.x, p.n, p.dim);
  return p.gram;
}

function kmeansCore(p: Prepared, k: number, seed: number, nInit: number, maxIter: number, tol: number, method: KMeansMethod): KMeansResult {
  const { x, xx, n, dim } = p;
  // scikit-learn's tolerance: tol * mean of per-feature variances
  let meanVar = 0;
  if (tol > 0) {
    for (let t = 0; t < dim; t++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += x[i * dim + t]!;
      m /= n;
      let v = 0;
      for (let i = 0; i < n; i++) {
        const d = x[i * dim + t]! - m;
        v += d * d;
      }
      meanVar += v / n;
    }
    meanVar /= dim;
  }
  const tolAbs = tol * meanVar;
  const useGram = method === 'gram' || (method === 'auto' && preferGram(n, dim, k, nInit));
  const g = useGram ? getGram(p) : undefined;
  const sq = g !== undefined
    ? (i: number, q: number): number => Math.max(0, xx[i]! - 2 * g[i * n + q]! + xx[q]!)
    : (i: number, q: number): number => Math.max(0, xx[i]! - 2 * dot(x, i * dim, x, q * dim, dim) + xx[q]!);
  const rng = new Rng(seed);
  let best: Run | undefined;
  for (let r = 0; r < nInit; r++) {
    const init = kmeansPlusPlus(n, k, rng, sq);
    const run = g !== undefined
      ? lloydGram(x, g, xx, n, dim, k, init, maxIter, tolAbs)
      : lloydDirect(x, xx, n, dim, k, init, maxIter, tolAbs);
    if (best === undefined || run.inertia < best.inertia) best = run;
  }
  const b = best!;
  return { labels: b.labels, centroids: Float32Array.from(b.centers), inertia: b.inertia, iterations: b.iterations };
}

function checkMethod(fn: string, v: unknown): KMeansMethod {
  if (v === undefined) return 'auto';
  if (v !== 'auto' && v !== 'gram' && v !== 'direct')
    throw new InvalidArgumentError(`${fn}: 'options.method' must be 'auto', 'gram' or 'direct' (got ${String(v)})`);
  return v;
}

/**
 * k-means clustering (Euclidean) of `n` samples of `dim` features.
 *
 * k-means++ initialisation (greedy, as scikit-learn), Lloyd iterations until
 * no label changes, the centroid shift falls under the tolerance, or
 * `maxIter`; the best of `nInit` seeded runs by inertia. A cluster that
 * becomes empty is re-seeded at the sample farthest from its centroid. When
 * the data has fewer distinct points than `k`, some centroids coincide and
 * some clusters stay empty (no error).
 *
 * @throws InvalidArgumentError for bad sizes or options (`1 <= k <= n`).
 * @throws BadInputError when `data` holds NaN or infinity.
 */
export function kmeans(data: SampleMatrix, n: number, dim: number, k: number, options?: KMeansOptions): KMeansResult {
  const fn = 'kmeans';
  const o = checkOptions(fn, options);
  const { x, n: nn, dim: dd } = checkData(fn, data, n, dim);
  const kk = checkIntArg(fn, 'k', k, 1, nn);
  const seed = optInt(fn, o, 'seed', 0, 0, 0xffffffff);
  const nInit = optInt(fn, o, 'nInit', 10, 1, 1e6);
  const maxIter = optInt(fn, o, 'maxIter', 300, 1, 1e9);
  const tol = o['tol'] === undefined ? 1e-4 : o['tol'];
  if (typeof tol !== 'number' || !Number.isFinite(tol) || tol < 0)
    throw new InvalidArgumentError(`${fn}: 'options.tol' must be a finite number >= 0 (got ${String(tol)})`);
  const method = checkMethod(fn, o['method']);
  if (method === 'gram' && nn > GRAM_MAX_N)
    throw new InvalidArgumentError(`${fn}: 'options.method' 'gram' needs n <= ${GRAM_MAX_N} (got n = ${nn})`);
  return kmeansCore({ x, xx: rowNorms(x, nn, dd), n: nn, dim: dd }, kk, seed, nInit, maxIter, tol, method);
}

// ---------------------------------------------------------------------------
// silhouette
// ---------------------------------------------------------------------------

/** Densifies labels to 0..L-1 (ascending label order). */
function encodeLabels(fn: string, labels: unknown, n: number): { idx: Int32Array; count: number } {
  if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<number>).length !== 'number')
    throw new InvalidArgumentError(`${fn}: 'labels' must be an array of integers`);
  const lab = labels as ArrayLike<unknown>;
  if (lab.length !== n) throw new InvalidArgumentError(`${fn}: 'labels' has ${lab.length} entries, expected n = ${n}`);
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = lab[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new InvalidArgumentError(`${fn}: 'labels[${i}]' must be an integer (got ${String(v)})`);
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
function silhouetteOf(p: Prepared, idx: Int32Array, nLabels: number): number {
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
  const { x, n: nn, dim: dd } = checkData(fn, data, n, dim);
  const { idx, count } = encodeLabels(fn, labels, nn);
  if (count < 2 || count > nn - 1)
    throw new InvalidArgumentError(`${fn}: the number of distinct labels is ${count}; valid values are 2 to n - 1 = ${nn - 1}`);
  return silhouetteOf({ x, xx: rowNorms(x, nn, dd), n: nn, dim: dd }, idx, count);
}

// ---------------------------------------------------------------------------
// K selection
// ---------------------------------------------------------------------------

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
  const o = checkOptions(fn, options);
  const { x, n: nn, dim: dd } = checkData(fn, data, n, dim);
  if (nn < 3) throw new InvalidArgumentError(`${fn}: needs at least 3 samples (got n = ${nn})`);
  const kMin = optInt(fn, o, 'kMin', 2, 2, nn - 1);
  const kMax = optInt(fn, o, 'kMax', Math.max(kMin, Math.min(10, nn - 1)), kMin, nn - 1);
  const seed = optInt(fn, o, 'seed', 0, 0, 0xffffffff);
  const nInit = optInt(fn, o, 'nInit', 10, 1, 1e6);
  const maxIter = optInt(fn, o, 'maxIter', 300, 1, 1e9);
  const p: Prepared = { x, xx: rowNorms(x, nn, dd), n: nn, dim: dd };
  const curve: KScore[] = [];
  let best: { k: number; score: number; clustering: KMeansResult } | undefined;
  for (let k = kMin; k <= kMax; k++) {
    const clustering = kmeansCore(p, k, seed, nInit, maxIter, 1e-4, 'auto');
    const { idx, count } = encodeLabels(fn, clustering.labels, nn);
    const score = count < 2 ? -1 : silhouetteOf(p, idx, count);
    curve.push({ k, score });
    if (best === undefined || score > best.score) best = { k, score, clustering };
  }
  return { k: best!.k, curve, clustering: best!.clustering };
}
