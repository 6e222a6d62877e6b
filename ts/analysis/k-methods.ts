/**
 * The numeric cores of the K estimators (synchronous, pure TypeScript). The
 * public, Promise-returning API is `estimate-k-async.ts`, which runs these on
 * a worker thread (`k-worker.ts`) so they never block the main thread.
 *
 * Every core returns the curve it maximised (`{k, score}` for each K it
 * evaluated, ascending K) and the K it chose.
 * @internal
 * @module
 */
import { jacobiEigen } from './pca.js';
import { InvalidArgumentError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import { DEFAULT_TOL, kmeansCore } from './kmeans.js';
import { fitGmm, gmmBic } from './gmm.js';
import { adjustedRandIndex, evaluate, type ClassLabel } from './metrics.js';
import { dot, rowNorms, type Prepared } from './samples.js';
import { encodeLabels, silhouetteOf } from './silhouette.js';

/** One point of a K-selection curve. */
export interface KPoint {
  k: number;
  score: number;
}

/** What every core returns. */
export interface KCurveResult {
  k: number;
  curve: KPoint[];
}

/** Thrown inside a core when the caller asked to stop (checked between K values / resamples). */
export type StopCheck = () => void;

function subset(p: Prepared, idx: ArrayLike<number>): Prepared {
  const { x, dim } = p;
  const m = idx.length;
  const y = new Float64Array(m * dim);
  for (let i = 0; i < m; i++) y.set(x.subarray(idx[i]! * dim, idx[i]! * dim + dim), i * dim);
  return { x: y, xx: rowNorms(y, m, dim), n: m, dim };
}

/**
 * Silhouette: k-means for every K in `kMin..kMax`, the K with the highest
 * mean silhouette (the smaller K on ties; a collapsed clustering scores -1).
 * Same clusterings and scores as the synchronous `estimateK`.
 */
export function silhouetteCore(p: Prepared, kMin: number, kMax: number, seed: number, nInit: number, maxIter: number, stop: StopCheck): KCurveResult {
  return scanK(kMin, kMax, stop, (k) => {
    const clustering = kmeansCore(p, k, seed, nInit, maxIter, DEFAULT_TOL, 'auto');
    const { idx, count } = encodeLabels('silhouette', clustering.labels, p.n);
    return count < 2 ? -1 : silhouetteOf(p, idx, count);
  });
}

/** Scores every K in `kMin..kMax` (checking `stop` before each) and picks the highest (the smaller K on ties). */
function scanK(kMin: number, kMax: number, stop: StopCheck, score: (k: number) => number): KCurveResult {
  const curve: KPoint[] = [];
  let best: KPoint | undefined;
  for (let k = kMin; k <= kMax; k++) {
    stop();
    const point = { k, score: score(k) };
    curve.push(point);
    if (best === undefined || point.score > best.score) best = point;
  }
  return { k: best!.k, curve };
}

/**
 * Stability (Ben-Hur, Elisseeff & Guyon 2002; Lange et al. 2004): for each
 * of `resamples` pairs of random subsamples (a `fraction` of the samples each,
 * drawn without replacement), k-means on both and the adjusted Rand index of
 * the two clusterings on the samples they share; the score of K is the mean
 * ARI. A K that splits a true group arbitrarily, or merges two groups in
 * changing ways, is unstable. K = the LARGEST K whose score is within
 * `tolerance` of the best (a coarser K that merges well-separated groups the
 * same way every time can be just as stable; the first drop marks the end).
 */
export function stabilityCore(
  p: Prepared, kMin: number, kMax: number, seed: number, nInit: number, maxIter: number,
  resamples: number, fraction: number, tolerance: number, stop: StopCheck,
): KCurveResult {
  const n = p.n;
  const m = Math.max(kMax + 1, Math.min(n, Math.round(fraction * n)));
  const rand = mulberry32(seed ^ 0x5bd1e995);
  const sums = new Float64Array(kMax + 1);
  const draw = (): Int32Array => {
    // partial Fisher–Yates, then sorted (the order of samples does not matter to k-means' result quality)
    const perm = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < m; i++) {
      const j = i + Math.floor(rand() * (n - i));
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    }
    return perm.slice(0, m).sort();
  };
  for (let b = 0; b < resamples; b++) {
    const ia = draw(), ib = draw();
    const pa = subset(p, ia), pb = subset(p, ib);
    // shared samples: positions in a and in b
    const posB = new Int32Array(n).fill(-1);
    ib.forEach((s, j) => (posB[s] = j));
    const sharedA: number[] = [], sharedB: number[] = [];
    ia.forEach((s, j) => {
      if (posB[s]! >= 0) {
        sharedA.push(j);
        sharedB.push(posB[s]!);
      }
    });
    for (let k = kMin; k <= kMax; k++) {
      stop();
      const la = kmeansCore(pa, k, seed + 2 * b, nInit, maxIter, DEFAULT_TOL, 'auto').labels;
      const lb = kmeansCore(pb, k, seed + 2 * b + 1, nInit, maxIter, DEFAULT_TOL, 'auto').labels;
      sums[k]! += adjustedRandIndex(Int32Array.from(sharedA, (j) => la[j]!), Int32Array.from(sharedB, (j) => lb[j]!));
    }
  }
  const curve: KPoint[] = [];
  for (let k = kMin; k <= kMax; k++) curve.push({ k, score: sums[k]! / resamples });
  const best = Math.max(...curve.map((c) => c.score));
  let k = kMin;
  for (const c of curve) if (c.score >= best - tolerance) k = c.k;
  return { k, curve };
}

/**
 * The smallest `count` eigenvalues of the symmetric normalised Laplacian
 * `L = I - D^-1/2 W D^-1/2` of a sparse symmetric affinity (CSR), by subspace
 * iteration on `I + D^-1/2 W D^-1/2` (eigenvalues 2 - λ(L), in [0, 2]) with
 * Rayleigh–Ritz, until the Ritz values settle.
 */
function smallestLaplacianEigenvalues(
  n: number, rowStart: Int32Array, cols: Int32Array, w: Float64Array, count: number, seed: number, stop: StopCheck,
): Float64Array {
  const deg = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let e = rowStart[i]!; e < rowStart[i + 1]!; e++) deg[i]! += w[e]!;
  const dis = Float64Array.from(deg, (d) => (d > 0 ? 1 / Math.sqrt(d) : 0));
  const m = Math.min(n, count + 6);
  const rand = mulberry32(seed ^ 0x27d4eb2f);
  let Q = new Float64Array(n * m); // column-major: column j at j*n
  for (let i = 0; i < Q.length; i++) Q[i] = rand() - 0.5;
  const apply = (src: Float64Array, dst: Float64Array): void => {
    for (let j = 0; j < m; j++) {
      const o = j * n;
      for (let i = 0; i < n; i++) {
        let s = src[o + i]!; // the I of I + N
        const di = dis[i]!;
        for (let e = rowStart[i]!; e < rowStart[i + 1]!; e++) s += di * w[e]! * dis[cols[e]!]! * src[o + cols[e]!]!;
        dst[o + i] = s;
      }
    }
  };
  const orthonormalise = (X: Float64Array): void => {
    for (let j = 0; j < m; j++) {
      const oj = j * n;
      for (let pass = 0; pass < 2; pass++)
        for (let q = 0; q < j; q++) {
          const oq = q * n;
          let d = 0;
          for (let i = 0; i < n; i++) d += X[oj + i]! * X[oq + i]!;
          for (let i = 0; i < n; i++) X[oj + i]! -= d * X[oq + i]!;
        }
      let nn = 0;
      for (let i = 0; i < n; i++) nn += X[oj + i]! ** 2;
      nn = Math.sqrt(nn);
      if (nn < 1e-300) {
        for (let i = 0; i < n; i++) X[oj + i] = rand() - 0.5;
        j--; // redo this column
        continue;
      }
      for (let i = 0; i < n; i++) X[oj + i]! /= nn;
    }
  };
  orthonormalise(Q);
  let Z = new Float64Array(n * m);
  let prev: Float64Array = new Float64Array(m).fill(Infinity);
  let values: Float64Array = new Float64Array(m);
  const H = new Float64Array(m * m);
  for (let it = 0; it < 5000; it++) {
    if (it % 50 === 0) stop();
    apply(Q, Z);
    // Rayleigh–Ritz every 10 iterations (and rotate the basis onto the Ritz vectors)
    if (it % 10 === 9) {
      for (let a = 0; a < m; a++)
        for (let b = a; b < m; b++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += Q[a * n + i]! * Z[b * n + i]!;
          H[a * m + b] = s;
          H[b * m + a] = s;
        }
      const eig = jacobiEigen(H, m);
      values = eig.values;
      let delta = 0;
      for (let j = 0; j < m; j++) delta = Math.max(delta, Math.abs(values[j]! - prev[j]!));
      prev = Float64Array.from(values);
      if (delta < 1e-9) break;
    }
    orthonormalise(Z);
    [Q, Z] = [Z, Q];
  }
  // eigenvalues of I + N descending -> of L ascending
  const lam = Float64Array.from(values, (v) => Math.min(2, Math.max(0, 2 - v))).sort();
  return lam.slice(0, count);
}

/**
 * Eigengap (von Luxburg 2007 §8.3): a k-nearest-neighbour graph on the
 * samples with self-tuning Gaussian weights (Zelnik-Manor & Perona 2004:
 * `exp(-d_ij^2 / (σ_i σ_j))`, σ_i the distance to the i-th sample's
 * `neighbours`-th neighbour, edges symmetrised), the smallest eigenvalues
 * λ_1 <= λ_2 <= ... of its normalised Laplacian, and K = argmax over
 * `kMin..kMax` of the gap `λ_{K+1} - λ_K` (the score; the smaller K on ties).
 */
export function eigengapCore(p: Prepared, kMin: number, kMax: number, neighbours: number, seed: number, stop: StopCheck): KCurveResult {
  const { n, dim, x, xx } = p;
  const nb = Math.min(neighbours, n - 1);
  // kNN by squared Euclidean distance
  const nbr = new Int32Array(n * nb);
  const nbd = new Float64Array(n * nb);
  const d2 = new Float64Array(n);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 64 === 0) stop();
    for (let j = 0; j < n; j++) d2[j] = j === i ? Infinity : Math.max(0, xx[i]! + xx[j]! - 2 * dot(x, i * dim, x, j * dim, dim));
    for (let j = 0; j < n; j++) order[j] = j;
    // partial selection of the nb smallest (small nb: insertion into a sorted prefix)
    const best: number[] = [];
    for (let j = 0; j < n; j++) {
      const v = d2[j]!;
      if (best.length < nb || v < d2[best[best.length - 1]!]!) {
        let pos = best.length;
        while (pos > 0 && d2[best[pos - 1]!]! > v) pos--;
        best.splice(pos, 0, j);
        if (best.length > nb) best.pop();
      }
    }
    best.forEach((j, r) => {
      nbr[i * nb + r] = j;
      nbd[i * nb + r] = d2[j]!;
    });
  }
  const sigma = Float64Array.from({ length: n }, (_, i) => Math.sqrt(nbd[i * nb + nb - 1]!) || 1e-12);
  // symmetric edge set: i~j when j is among i's neighbours or i among j's
  const adj: Map<number, number>[] = Array.from({ length: n }, () => new Map());
  for (let i = 0; i < n; i++)
    for (let r = 0; r < nb; r++) {
      const j = nbr[i * nb + r]!;
      const wv = Math.exp(-nbd[i * nb + r]! / (sigma[i]! * sigma[j]!));
      adj[i]!.set(j, wv);
      adj[j]!.set(i, wv);
    }
  const rowStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) rowStart[i + 1] = rowStart[i]! + adj[i]!.size;
  const cols = new Int32Array(rowStart[n]!);
  const w = new Float64Array(rowStart[n]!);
  for (let i = 0; i < n; i++) {
    let e = rowStart[i]!;
    for (const [j, v] of [...adj[i]!].sort((a, b) => a[0] - b[0])) {
      cols[e] = j;
      w[e++] = v;
    }
  }
  const lam = smallestLaplacianEigenvalues(n, rowStart, cols, w, kMax + 1, seed, stop);
  const curve: KPoint[] = [];
  let best: KPoint | undefined;
  for (let k = kMin; k <= kMax; k++) {
    const score = lam[k]! - lam[k - 1]!; // λ_{k+1} - λ_k, 1-based
    curve.push({ k, score });
    if (best === undefined || score > best.score) best = { k, score };
  }
  return { k: best!.k, curve };
}

/** EM tolerance on the mean log-likelihood (scikit-learn's default). */
export const GMM_TOL = 1e-3;
/** Covariance regularisation, relative to the mean per-feature variance (scikit-learn's absolute 1e-6 is too small for standardised features with discrete components; 1e-3 of unit variance). */
export const GMM_REG = 1e-3;

/**
 * BIC (Fraley & Raftery 2002, model-based clustering): a Gaussian mixture with
 * full covariance matrices for every K in `kMin..kMax` (EM from `nInit`
 * k-means starts, `gmm.ts`), scored by the Bayesian information criterion
 * `-2 log L + p log n` (p free parameters); K = the lowest BIC (the smaller K
 * on ties). Unlike the silhouette it lets each type have its own spread and
 * shape (a tight, distant group does not make the rest look like one), and
 * unlike the eigengap it penalises a K the data cannot support. The curve
 * holds `-BIC` (higher is better, like every curve). Full covariances need
 * samples: with few samples per type in many dimensions the penalty wins and
 * K is under-estimated (use it on region descriptors, not 48+-dimensional
 * backbone features, unless n is large).
 */
export function bicCore(p: Prepared, kMin: number, kMax: number, seed: number, nInit: number, maxIter: number, stop: StopCheck): KCurveResult {
  return scanK(kMin, kMax, stop, (k) => -gmmBic(fitGmm(p, k, seed, nInit, maxIter, GMM_TOL, GMM_REG), p.n, p.dim));
}

/**
 * GCD-style choice (Vaze et al., CVPR 2022, §3.3): k-means with K clusters
 * over the labelled and unlabelled samples together; the score of K is the
 * clustering accuracy (Hungarian-matched, = micro-F1) on the labelled part.
 * Too small a K can merge known classes, too large a K splits them, so the
 * score is a plateau ending at the true K. A bounded search (the paper uses
 * Brent's method; the plateau and k-means noise defeat a unimodal search
 * here): ascending K, stopped two steps after the score falls below the best;
 * K = the largest K within `tolerance` of the best (the plateau's right edge).
 * It evaluates about K + 2 values, not the whole range.
 * K counts the clusters of the union: when the labelled classes also occur
 * among the unlabelled samples (the GCD setting) it is their number of types.
 */
export function gcdCore(
  p: Prepared, labelledStart: number, labels: readonly ClassLabel[], kMin: number, kMax: number, seed: number, nInit: number, maxIter: number, tolerance: number, stop: StopCheck,
): KCurveResult {
  const memo = new Map<number, number>();
  const f = (k: number): number => {
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    stop();
    const lab = kmeansCore(p, k, seed, nInit, maxIter, DEFAULT_TOL, 'auto').labels;
    const score = evaluate(labels, lab.subarray(labelledStart)).f1;
    memo.set(k, score);
    return score;
  };
  // Ascending K, stopped once two K in a row score below the best so far by more than the
  // tolerance: past the true K the known classes split, and k-means noise alone rarely
  // costs two steps in a row.
  let best = -Infinity, below = 0;
  for (let k = kMin; k <= kMax && below < 2; k++) {
    const v = f(k);
    if (v > best) best = v;
    below = v < best - tolerance ? below + 1 : 0;
  }
  const curve = [...memo].map(([k, score]) => ({ k, score })).sort((a, b) => a.k - b.k);
  let k = curve[0]!.k;
  for (const c of curve) if (c.score >= best - tolerance) k = c.k;
  return { k, curve };
}

/**
 * The over-provisioned head's count (METHOD.md §5.4 mean-entropy term): a
 * model trained with `kMax` clusters; each image votes for its most probable
 * cluster; a cluster holds real mass when its share of the votes is at least
 * `threshold` (default `1 / (2 kMax)`, half the uniform share). The memax
 * term pushes the mean prediction toward uniform, so clusters the data
 * does not support keep a share well under uniform while each supported
 * cluster keeps about its type's share; half the uniform share separates the
 * two as long as no true type holds less than `1 / (2 kMax)` of the images.
 * The curve: the share of each cluster, largest first (k = rank).
 */
export function massCore(probabilities: readonly ArrayLike<number>[], kMax: number, threshold?: number): KCurveResult {
  if (probabilities.length === 0) throw new InvalidArgumentError('mass: no predictions to count');
  const t = threshold ?? 1 / (2 * kMax);
  const votes = new Float64Array(kMax);
  for (const p of probabilities) {
    if (p.length !== kMax) throw new InvalidArgumentError(`mass: a prediction has ${p.length} probabilities, expected kMax = ${kMax}`);
    let b = 0;
    for (let c = 1; c < kMax; c++) if (p[c]! > p[b]!) b = c;
    votes[b]! += 1;
  }
  const shares = Array.from(votes, (v) => v / probabilities.length).sort((a, b) => b - a);
  const curve = shares.map((score, i) => ({ k: i + 1, score }));
  const k = Math.max(1, shares.filter((s) => s >= t).length);
  return { k, curve };
}

/** Densified integer labels (for tests of the cores). @internal */
export function labelsOf(fn: string, labels: ArrayLike<number>, n: number): Int32Array {
  return encodeLabels(fn, labels, n).idx;
}
