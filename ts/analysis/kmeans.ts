/**
 * Seeded k-means (k-means++ initialisation, Lloyd iterations) on coordinates
 * or on the inner-product matrix, as scikit-learn.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { defaulted, int, num, oneOf, type SchemaFor } from '../core/options.js';
import { checkIntArg, dot, getGram, GRAM_MAX_N, meanFeatureVariance, prepare, resolveFor, sqDist, rowNorms, type Prepared, type SampleMatrix } from './samples.js';

/** Which Lloyd implementation {@link kmeans} uses. */
export type KMeansMethod = 'auto' | 'gram' | 'direct';

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

/** scikit-learn's relative tolerance; `estimateK` runs k-means with it. @internal */
export const DEFAULT_TOL = 1e-4;

/** The options {@link kmeans} and `estimateK` share: one default each. @internal */
export const KMEANS_RUN_OPTIONS = {
  seed: defaulted(int({ min: 0, max: 0xffffffff, default: 0, doc: 'PRNG seed.' })),
  nInit: defaulted(int({ min: 1, max: 1e6, default: 10, doc: 'k-means++ restarts; the lowest inertia wins.' })),
  maxIter: defaulted(int({ min: 1, max: 1e9, default: 300, doc: 'Maximum Lloyd iterations per run.' })),
} satisfies SchemaFor<Pick<KMeansOptions, 'seed' | 'nInit' | 'maxIter'>>;

/** The table of {@link KMeansOptions}. @internal */
export const KMEANS_OPTIONS = {
  ...KMEANS_RUN_OPTIONS,
  tol: defaulted(num({ min: 0, max: Infinity, default: DEFAULT_TOL, doc: 'Relative tolerance on the centroid shift.' })),
  method: defaulted(oneOf(['auto', 'gram', 'direct'] as const, { default: 'auto', doc: 'Lloyd implementation.' })),
} satisfies SchemaFor<KMeansOptions>;

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


/** k-means on prepared samples (the options already checked). @internal */
export function kmeansCore(p: Prepared, k: number, seed: number, nInit: number, maxIter: number, tol: number, method: KMeansMethod): KMeansResult {
  const { x, xx, n, dim } = p;
  // scikit-learn's tolerance: tol * mean of per-feature variances
  const tolAbs = tol > 0 ? tol * meanFeatureVariance(x, n, dim) : 0;
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
  const o = resolveFor(fn, KMEANS_OPTIONS, options);
  const p = prepare(fn, data, n, dim);
  const kk = checkIntArg(fn, 'k', k, 1, p.n);
  if (o.method === 'gram' && p.n > GRAM_MAX_N)
    throw new InvalidArgumentError(`${fn}: 'options.method' 'gram' needs n <= ${GRAM_MAX_N} (got n = ${p.n})`);
  return kmeansCore(p, kk, o.seed, o.nInit, o.maxIter, o.tol, o.method);
}
