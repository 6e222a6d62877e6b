/**
 * Clustering evaluation (METHOD.md §8, T29): NMI, ARI and Hungarian-matched F1,
 * reproducing scikit-learn 1.2 / SciPy 1.10 to the last few ulps.
 *
 * ```ts
 * import { evaluate } from 'anomalyncd';
 * const { nmi, ari, f1, mapping } = evaluate(['a', 'a', 'b'], [1, 1, 0]);
 * // nmi = ari = f1 = 1, mapping = [{ cluster: 0, label: 'b' }, { cluster: 1, label: 'a' }]
 * ```
 * @module
 */
import { InvalidArgumentError, shown } from '../core/errors.js';

/** A ground-truth label: a class name or a class index. */
export type ClassLabel = string | number;

/** Where one predicted cluster was sent by the Hungarian matching. */
export interface ClusterMatch {
  /** The predicted cluster id (as given in `pred`). */
  cluster: number;
  /**
   * The ground-truth label it is matched to, or `null` when there are more
   * clusters than classes and this cluster was left unmatched (all its
   * samples then count as errors).
   */
  label: ClassLabel | null;
}

/** Result of {@link evaluate}. */
export interface EvaluationResult {
  /** Normalized mutual information, arithmetic normaliser, natural logs (sklearn `normalized_mutual_info_score`). */
  nmi: number;
  /** Adjusted Rand index (sklearn `adjusted_rand_score`). */
  ari: number;
  /** Micro-F1 after the optimal one-to-one matching = clustering accuracy; a multiple of 1/N. */
  f1: number;
  /** Number of correctly matched samples (`f1 * N`). */
  correct: number;
  /** One entry per distinct predicted cluster, sorted by cluster id. */
  mapping: ClusterMatch[];
}

// ---------------------------------------------------------------------------
// numerics that follow NumPy
// ---------------------------------------------------------------------------

/**
 * NumPy's pairwise summation (`np.sum` on a contiguous float64 vector, NumPy 1.24).
 * @internal
 */
export function pairwiseSum(a: Float64Array, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = a[start]!, r1 = a[start + 1]!, r2 = a[start + 2]!, r3 = a[start + 3]!;
    let r4 = a[start + 4]!, r5 = a[start + 5]!, r6 = a[start + 6]!, r7 = a[start + 7]!;
    let i = 8;
    const end = n - (n % 8);
    for (; i < end; i += 8) {
      const b = start + i;
      r0 += a[b]!; r1 += a[b + 1]!; r2 += a[b + 2]!; r3 += a[b + 3]!;
      r4 += a[b + 4]!; r5 += a[b + 5]!; r6 += a[b + 6]!; r7 += a[b + 7]!;
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.sum(v)`: the reduction starts from the identity 0. */
function npSum(v: Float64Array): number {
  return 0 + pairwiseSum(v);
}

/** Code-point order, as NumPy sorts unicode strings. */
function compareCodePoints(a: string, b: string): number {
  const la = a.length, lb = b.length;
  let i = 0, j = 0;
  while (i < la && j < lb) {
    const ca = a.codePointAt(i)!, cb = b.codePointAt(j)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  if (i >= la) return j >= lb ? 0 : -1;
  return 1;
}

/** `np.unique(labels, return_inverse=True)`: sorted distinct values and each sample's index into them. */
function uniqueInverse<T extends ClassLabel>(labels: readonly T[]): { values: T[]; inverse: Int32Array; counts: Float64Array } {
  const distinct = [...new Set(labels)];
  if (distinct.length > 0 && typeof distinct[0] === 'number') (distinct as number[]).sort((x, y) => x - y);
  else (distinct as string[]).sort(compareCodePoints);
  const index = new Map<T, number>();
  distinct.forEach((v, i) => index.set(v, i));
  const inverse = new Int32Array(labels.length);
  const counts = new Float64Array(distinct.length);
  for (let s = 0; s < labels.length; s++) {
    const k = index.get(labels[s]!)!;
    inverse[s] = k;
    counts[k]! += 1;
  }
  return { values: distinct, inverse, counts };
}

/** sklearn `entropy(labels)` from the per-label counts in sorted-label order. */
function entropyFromCounts(counts: Float64Array): number {
  if (counts.length === 1) return 0;
  const piSum = npSum(counts);
  const logSum = Math.log(piSum);
  const terms = new Float64Array(counts.length);
  for (let i = 0; i < counts.length; i++) terms[i] = (counts[i]! / piSum) * (Math.log(counts[i]!) - logSum);
  return -npSum(terms);
}

// ---------------------------------------------------------------------------
// Hungarian algorithm
// ---------------------------------------------------------------------------

/**
 * Maximum-weight assignment on a dense `rows x cols` matrix (row-major),
 * rectangular allowed: returns, for each row, its column or -1 (when
 * `rows > cols`, `rows - cols` rows stay unmatched). Shortest augmenting
 * paths with potentials (Kuhn–Munkres, Jonker–Volgenant style), O(r^2 c).
 * Exact for integer weights below 2^53.
 */
export function hungarianMax(weights: ArrayLike<number>, rows: number, cols: number): Int32Array {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || weights.length !== rows * cols)
    throw new InvalidArgumentError(`hungarianMax: 'weights' must have rows*cols = ${rows}*${cols} entries (got ${weights.length})`);
  const rowOf = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return rowOf;
  const transpose = rows > cols;
  const n = transpose ? cols : rows; // n <= m
  const m = transpose ? rows : cols;
  let maxW = -Infinity;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!Number.isFinite(w)) throw new InvalidArgumentError('hungarianMax: weights must be finite');
    if (w > maxW) maxW = w;
  }
  // cost[i][j] (1-based in the algorithm) = maxW - weight, >= 0
  const cost = (i: number, j: number): number =>
    maxW - (transpose ? weights[j * cols + i]! : weights[i * cols + j]!);
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1); // p[j] = row (1-based) matched to column j, 0 = none
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = cost(i0 - 1, j - 1) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else {
          minv[j]! -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  for (let j = 1; j <= m; j++) {
    const i = p[j]!;
    if (i === 0) continue;
    if (transpose) rowOf[j - 1] = i - 1;
    else rowOf[i - 1] = j - 1;
  }
  return rowOf;
}

// ---------------------------------------------------------------------------
// evaluate
// ---------------------------------------------------------------------------

function checkInputs(truth: ArrayLike<ClassLabel>, pred: ArrayLike<number>): { t: ClassLabel[]; p: number[] } {
  if (truth === null || typeof truth !== 'object' || typeof truth.length !== 'number')
    throw new InvalidArgumentError("evaluate: 'truth' must be an array of labels");
  if (pred === null || typeof pred !== 'object' || typeof pred.length !== 'number')
    throw new InvalidArgumentError("evaluate: 'pred' must be an array of cluster ids");
  if (truth.length === 0) throw new InvalidArgumentError("evaluate: 'truth' must not be empty");
  if (pred.length !== truth.length)
    throw new InvalidArgumentError(`evaluate: 'pred' has ${pred.length} entries but 'truth' has ${truth.length}`);
  const t = Array.from(truth);
  const kind = typeof t[0];
  for (let i = 0; i < t.length; i++) {
    const x = t[i];
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) throw new InvalidArgumentError(`evaluate: 'truth[${i}]' must be a finite number or a string (got ${x})`);
      if (x === 0) t[i] = 0; // -0 -> 0
    } else if (typeof x !== 'string') {
      throw new InvalidArgumentError(`evaluate: 'truth[${i}]' must be a string or a number (got ${typeof x})`);
    }
    if (typeof x !== kind) throw new InvalidArgumentError("evaluate: 'truth' mixes strings and numbers; use one kind of label");
  }
  const p = Array.from(pred);
  for (let i = 0; i < p.length; i++) {
    const x = p[i];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      throw new InvalidArgumentError(`evaluate: 'pred[${i}]' must be a non-negative integer (got ${shown(x)})`);
    if (x === 0) p[i] = 0;
  }
  return { t, p };
}

/** The contingency table of two labelings. */
interface Contingency {
  n: number;
  classes: ReturnType<typeof uniqueInverse<ClassLabel>>;
  clusters: ReturnType<typeof uniqueInverse<number>>;
  /** Contingency rows (classes) and columns (clusters). */
  nr: number;
  nc: number;
  /** Sparse cells keyed column-major (cluster * nr + class). */
  cells: Map<number, number>;
  /** The keys ascending: scipy.sparse.find order after CSR -> COO -> sum_duplicates (lexsorted by (col, row)). */
  keys: number[];
}

function contingency(t: ClassLabel[], p: number[]): Contingency {
  const n = t.length;
  const classes = uniqueInverse(t);
  const clusters = uniqueInverse(p);
  const nr = classes.values.length;
  const nc = clusters.values.length;
  const cells = new Map<number, number>();
  for (let s = 0; s < n; s++) {
    const key = clusters.inverse[s]! * nr + classes.inverse[s]!;
    cells.set(key, (cells.get(key) ?? 0) + 1);
  }
  return { n, classes, clusters, nr, nc, cells, keys: [...cells.keys()].sort((a, b) => a - b) };
}

/** ARI from exact integer pair counts, as sklearn's `adjusted_rand_score` with Python ints. */
function ariOf({ n, classes, clusters, nr, cells, keys }: Contingency): number {
  let sumSquares = 0n, rowDot = 0n, colDot = 0n;
  for (const key of keys) {
    const col = Math.floor(key / nr);
    const row = key - col * nr;
    const val = BigInt(cells.get(key)!);
    sumSquares += val * val;
    rowDot += val * BigInt(clusters.counts[col]!);
    colDot += val * BigInt(classes.counts[row]!);
  }
  const bn = BigInt(n);
  const tp = sumSquares - bn;
  const fp = rowDot - sumSquares;
  const fn = colDot - sumSquares;
  const tn = bn * bn - fp - fn - sumSquares;
  if (fn === 0n && fp === 0n) return 1.0;
  return (2.0 * Number(tp * tn - fn * fp)) / Number((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

/** The adjusted Rand index alone (the ARI of {@link evaluate}), for callers that need no NMI or matching. @internal */
export function adjustedRandIndex(truth: ArrayLike<ClassLabel>, pred: ArrayLike<number>): number {
  const { t, p } = checkInputs(truth, pred);
  return ariOf(contingency(t, p));
}

/**
 * Evaluates a clustering against ground truth exactly as the reference
 * (METHOD.md §8): NMI (`normalized_mutual_info_score`, arithmetic), ARI
 * (`adjusted_rand_score`) and micro-F1 after Hungarian matching of clusters
 * to classes (= clustering accuracy; any optimal matching gives the same
 * value). NMI and ARI do not depend on the matching (T29).
 *
 * @param truth ground-truth labels, all strings or all finite numbers (label
 *   order only matters for float summation order, as in NumPy's `np.unique`).
 * @param pred predicted cluster ids, non-negative integers, same length.
 * @throws InvalidArgumentError on empty input, length mismatch, bad labels.
 */
export function evaluate(truth: ArrayLike<ClassLabel>, pred: ArrayLike<number>): EvaluationResult {
  const { t, p } = checkInputs(truth, pred);
  const c = contingency(t, p);
  const { n, classes, clusters, nr, nc, cells, keys } = c;

  // ---- NMI ----
  let nmi: number;
  if (nr === 1 && nc === 1) {
    nmi = 1.0;
  } else {
    let mi: number;
    if (nr === 1 || nc === 1) {
      mi = 0;
    } else {
      const logN = Math.log(n);
      const terms = new Float64Array(keys.length);
      for (let z = 0; z < keys.length; z++) {
        const key = keys[z]!;
        const col = Math.floor(key / nr);
        const row = key - col * nr;
        const val = cells.get(key)!;
        const cnm = val / n;
        const outer = classes.counts[row]! * clusters.counts[col]!;
        const logOuter = -Math.log(outer) + logN + logN;
        let term = cnm * (Math.log(val) - logN) + cnm * logOuter;
        if (Math.abs(term) < Number.EPSILON) term = 0;
        terms[z] = term;
      }
      mi = Math.max(npSum(terms), 0);
    }
    if (mi === 0) {
      nmi = 0.0;
    } else {
      const hTrue = entropyFromCounts(classes.counts);
      const hPred = entropyFromCounts(clusters.counts);
      nmi = mi / ((0 + hTrue + hPred) / 2);
    }
  }

  const ari = ariOf(c);

  // ---- Hungarian-matched accuracy (rows = clusters, cols = classes) ----
  const w = new Float64Array(nc * nr);
  for (const key of keys) w[key] = cells.get(key)!; // key = col*nr + row = cluster*nr + class
  const match = hungarianMax(w, nc, nr);
  let correct = 0;
  const mapping: ClusterMatch[] = [];
  for (let c = 0; c < nc; c++) {
    const k = match[c]!;
    if (k >= 0) correct += w[c * nr + k]!;
    mapping.push({ cluster: clusters.values[c]!, label: k >= 0 ? classes.values[k]! : null });
  }
  return { nmi, ari, f1: correct / n, correct, mapping };
}
