/**
 * What the clustering tools share: the sample-matrix check, the float64
 * kernels (dot products, squared distances, the inner-product matrix) and the
 * option-table check with the calling function's name in its messages.
 * @internal
 * @module
 */
import { BadInputError, InvalidArgumentError, shown } from '../core/errors.js';
import { resolveOptions, type Resolved, type Schema } from '../core/options.js';

/** Row-major `n x dim` samples. */
export type SampleMatrix = Float32Array | Float64Array;

export function checkIntArg(fn: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(`${fn}: '${name}' must be an integer in ${min}..${max} (got ${shown(value)})`);
  return value;
}


/** `resolveOptions` with `fn: ` before its messages (e.g. `kmeans: Option 'nInit' must be ...`). */
export function resolveFor<S extends Schema>(fn: string, schema: S, options: unknown): Resolved<S> {
  try {
    return resolveOptions(schema, options);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`${fn}: ${e.message}`);
    throw e;
  }
}

/** Validates the sample matrix and returns a float64 copy. */
export function checkData(fn: string, data: unknown, n: unknown, dim: unknown): { x: Float64Array; n: number; dim: number } {
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


export function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, dim: number): number {
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

export function sqDist(x: Float64Array, xo: number, y: Float64Array, yo: number, dim: number): number {
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

/** Mean over the features of each feature's (population) variance; scikit-learn's scale for k-means' tol. */
export function meanFeatureVariance(x: Float64Array, n: number, dim: number): number {
  let meanVar = 0;
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
  return meanVar / dim;
}

export function rowNorms(x: Float64Array, rows: number, dim: number, out = new Float64Array(rows)): Float64Array {
  for (let i = 0; i < rows; i++) out[i] = dot(x, i * dim, x, i * dim, dim);
  return out;
}

/** Largest n for which the n x n inner-product matrix is materialised (32 MiB). */
export const GRAM_MAX_N = 2048;

/** Inner products of all sample pairs (n x n, symmetric, bitwise equal to `dot`). */
export function gramMatrix(x: Float64Array, n: number, dim: number): Float64Array {
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

export interface Prepared {
  x: Float64Array;
  xx: Float64Array;
  n: number;
  dim: number;
  /** Lazily built inner-product matrix (n <= GRAM_MAX_N). */
  gram?: Float64Array;
}

export function getGram(p: Prepared): Float64Array {
  p.gram ??= gramMatrix(p.x, p.n, p.dim);
  return p.gram;
}

/** Validated samples with their squared norms. */
export function prepare(fn: string, data: unknown, n: unknown, dim: unknown): Prepared {
  const { x, n: nn, dim: dd } = checkData(fn, data, n, dim);
  return { x, xx: rowNorms(x, nn, dd), n: nn, dim: dd };
}
