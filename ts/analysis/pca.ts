/**
 * A deterministic 2-D PCA for the report's embedding plot.
 * @internal
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';

/** Modified Gram–Schmidt (twice) on the `b` columns of Q (column-major, m rows); collapsed columns are refilled from `rand`. */
function orthonormalize(Q: Float64Array, m: number, b: number, rand: () => number): void {
  for (let j = 0; j < b; j++) {
    const qj = Q.subarray(j * m, (j + 1) * m);
    for (let attempt = 0; attempt < 4; attempt++) {
      let before = 0;
      for (let i = 0; i < m; i++) before += qj[i]! * qj[i]!;
      for (let pass = 0; pass < 2; pass++)
        for (let p = 0; p < j; p++) {
          const qp = Q.subarray(p * m, (p + 1) * m);
          let d = 0;
          for (let i = 0; i < m; i++) d += qp[i]! * qj[i]!;
          for (let i = 0; i < m; i++) qj[i]! -= d * qp[i]!;
        }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += qj[i]! * qj[i]!;
      if (norm > 1e-24 * Math.max(before, 1e-300) && norm > 1e-300) {
        const s = 1 / Math.sqrt(norm);
        for (let i = 0; i < m; i++) qj[i]! *= s;
        break;
      }
      for (let i = 0; i < m; i++) qj[i] = rand() - 0.5;
    }
  }
}

/** Eigen-decomposition of a small symmetric matrix (row-major, n×n) by cyclic Jacobi; eigenvalues descending, vectors as columns of V. @internal */
export function jacobiEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        total += a[i * n + j]! ** 2;
        if (i !== j) off += a[i * n + j]! ** 2;
      }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * Projects `n` row-major samples of `dim` features onto their first two
 * principal components, for the report's embedding plot.
 *
 * The samples are centred; the smaller of the Gram matrix (`n×n`, when
 * `n ≤ dim`) and the covariance matrix (`dim×dim`) is formed in float64 and
 * its top eigenvectors found by block power (subspace) iteration with
 * Rayleigh–Ritz steps from a fixed seed, so the result is deterministic. Each
 * axis' sign is fixed so that its largest-magnitude coordinate is positive.
 * Axes the data do not span (rank < 2, n < 2) are zero.
 *
 * @returns `Float32Array` of `2n` interleaved coordinates `x0, y0, x1, y1, …`.
 * @throws {@link InvalidArgumentError} on bad sizes or non-finite features.
 */
export function pca2d(features: Float32Array | Float64Array, n: number, dim: number): Float32Array {
  if (!(features instanceof Float32Array || features instanceof Float64Array)) throw new InvalidArgumentError('pca2d needs a Float32Array or Float64Array');
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(dim) || dim < 0) throw new InvalidArgumentError(`pca2d: n (${n}) and dim (${dim}) must be non-negative integers`);
  if (features.length !== n * dim) throw new InvalidArgumentError(`pca2d: ${n}×${dim} needs ${n * dim} values, got ${features.length}`);
  const out = new Float32Array(2 * n);
  if (n < 2 || dim < 1) return out;
  const X = new Float64Array(n * dim);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n * dim; i++) {
    const v = features[i]!;
    if (!Number.isFinite(v)) throw new InvalidArgumentError(`pca2d: feature ${i} is ${v}`);
    mean[i % dim]! += v;
  }
  for (let k = 0; k < dim; k++) mean[k]! /= n;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) X[i * dim + k] = features[i * dim + k]! - mean[k]!;

  const gram = n <= dim;
  const m = gram ? n : dim;
  const S = new Float64Array(m * m);
  if (gram) {
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += X[i * dim + k]! * X[j * dim + k]!;
        S[i * m + j] = s;
        S[j * m + i] = s;
      }
  } else {
    for (let i = 0; i < n; i++) {
      const row = X.subarray(i * dim, (i + 1) * dim);
      for (let a = 0; a < dim; a++) {
        const xa = row[a]!;
        if (xa === 0) continue;
        const base = a * m;
        for (let b = a; b < dim; b++) S[base + b]! += xa * row[b]!;
      }
    }
    for (let a = 0; a < dim; a++) for (let b = a + 1; b < dim; b++) S[b * m + a] = S[a * m + b]!;
  }
  let trace = 0;
  for (let i = 0; i < m; i++) trace += S[i * m + i]!;
  if (!(trace > 0)) return out;

  const bs = Math.min(6, m);
  const rand = mulberry32(0x2545f491);
  const Q = new Float64Array(m * bs);
  for (let i = 0; i < Q.length; i++) Q[i] = rand() - 0.5;
  orthonormalize(Q, m, bs, rand);
  const Z = new Float64Array(m * bs);
  const multiply = (): void => {
    for (let j = 0; j < bs; j++) {
      const q = Q.subarray(j * m, (j + 1) * m);
      for (let r = 0; r < m; r++) {
        const srow = S.subarray(r * m, (r + 1) * m);
        let s = 0;
        for (let c = 0; c < m; c++) s += srow[c]! * q[c]!;
        Z[j * m + r] = s;
      }
    }
  };
  let values: Float64Array = new Float64Array(bs);
  for (let iter = 1; iter <= 1500; iter++) {
    multiply();
    if (iter % 4 !== 0 && iter < 1500) {
      Q.set(Z);
      orthonormalize(Q, m, bs, rand);
      continue;
    }
    // Rayleigh–Ritz: T = Qᵀ S Q, rotate Q onto T's eigenvectors, check the top-2 residuals.
    const T = new Float64Array(bs * bs);
    for (let a = 0; a < bs; a++)
      for (let b = 0; b < bs; b++) {
        let s = 0;
        for (let r = 0; r < m; r++) s += Q[a * m + r]! * Z[b * m + r]!;
        T[a * bs + b] = s;
      }
    for (let a = 0; a < bs; a++) for (let b = a + 1; b < bs; b++) T[a * bs + b] = T[b * bs + a] = (T[a * bs + b]! + T[b * bs + a]!) / 2;
    const eig = jacobiEigen(T, bs);
    values = eig.values;
    const Qr = new Float64Array(m * bs), Zr = new Float64Array(m * bs);
    for (let j = 0; j < bs; j++)
      for (let p = 0; p < bs; p++) {
        const w = eig.vectors[p * bs + j]!;
        if (w === 0) continue;
        for (let r = 0; r < m; r++) {
          Qr[j * m + r]! += w * Q[p * m + r]!;
          Zr[j * m + r]! += w * Z[p * m + r]!;
        }
      }
    let residual = 0;
    for (let j = 0; j < Math.min(2, bs); j++)
      for (let r = 0; r < m; r++) residual = Math.max(residual, Math.abs(Zr[j * m + r]! - values[j]! * Qr[j * m + r]!));
    Q.set(Qr);
    if (residual <= 1e-7 * Math.max(values[0]!, 1e-300)) break;
    Q.set(Zr);
    orthonormalize(Q, m, bs, rand);
  }

  const tol = 1e-12 * trace;
  for (let j = 0; j < Math.min(2, bs); j++) {
    const lambda = values[j]!;
    if (!(lambda > tol)) continue;
    const q = Q.subarray(j * m, (j + 1) * m);
    const coords = new Float64Array(n);
    if (gram) {
      const s = Math.sqrt(lambda);
      for (let i = 0; i < n; i++) coords[i] = q[i]! * s;
    } else {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += X[i * dim + k]! * q[k]!;
        coords[i] = s;
      }
    }
    let big = 0;
    for (let i = 1; i < n; i++) if (Math.abs(coords[i]!) > Math.abs(coords[big]!)) big = i;
    const sign = coords[big]! < 0 ? -1 : 1;
    for (let i = 0; i < n; i++) out[2 * i + j] = sign * coords[i]! + 0;
  }
  return out;
}
