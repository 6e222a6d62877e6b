/**
 * A minimal dense tensor: a dtype, a shape and a TypedArray in C order. The
 * native core reads `data` in place (no copy) and hands results back as
 * TypedArrays over native memory.
 * @module
 */
import { InvalidArgumentError, shown } from './errors.js';

/** Element types that cross the native boundary. */
export type DType = 'float32' | 'float64' | 'uint8' | 'int32' | 'int64';

/** The TypedArray that backs each {@link DType}. */
export interface DataOf {
  float32: Float32Array;
  float64: Float64Array;
  uint8: Uint8Array;
  int32: Int32Array;
  int64: BigInt64Array;
}

/** Any of the TypedArrays a {@link Tensor} may hold. */
export type TensorData = DataOf[DType];

const constructors = {
  float32: Float32Array,
  float64: Float64Array,
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
} as const;

/** The dtype of a TypedArray, or undefined when it has none here. */
export function dtypeOf(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return undefined;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A dense C-order tensor. */
export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DataOf[D];

  constructor(dtype: D, shape: readonly number[], data?: DataOf[D]) {
    if (!Array.isArray(shape)) throw new InvalidArgumentError('Tensor shape must be an array of non-negative integers');
    if (typeof dtype !== 'string' || !Object.hasOwn(constructors, dtype))
      throw new InvalidArgumentError(`Unknown dtype '${shown(dtype)}'; expected one of ${Object.keys(constructors).join(', ')}`);
    for (const d of shape)
      if (!Number.isInteger(d) || d < 0) throw new InvalidArgumentError(`Tensor shape ${shapeText(shape)} must hold non-negative integers`);
    const n = numel(shape);
    const Ctor = constructors[dtype] as unknown as new (n: number) => DataOf[D];
    if (!Ctor) throw new InvalidArgumentError(`Unknown dtype '${shown(dtype)}'; expected one of ${Object.keys(constructors).join(', ')}`);
    const array = data ?? new Ctor(n);
    if (dtypeOf(array) !== dtype) throw new InvalidArgumentError(`Tensor data is not a ${dtype} array`);
    if (array.length !== n)
      throw new InvalidArgumentError(`Tensor shape ${shapeText(shape)} needs ${n} elements but data has ${array.length}`);
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = array;
  }

  /** Wraps an existing TypedArray (no copy). */
  static from<A extends TensorData>(data: A, shape: readonly number[]): Tensor<DTypeOf<A>> {
    const dtype = dtypeOf(data);
    if (!dtype) throw new InvalidArgumentError('Tensor.from needs a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array');
    return new Tensor(dtype as DTypeOf<A>, shape, data as unknown as DataOf[DTypeOf<A>]);
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }
}

/** The dtype that a TypedArray type corresponds to. */
export type DTypeOf<A> = A extends Float32Array
  ? 'float32'
  : A extends Float64Array
    ? 'float64'
    : A extends Uint8Array
      ? 'uint8'
      : A extends Int32Array
        ? 'int32'
        : 'int64';

/** Is `value` a Tensor-shaped object (a Tensor, or a plain {dtype, shape, data})? */
export function isTensorLike(value: unknown): value is Tensor {
  if (value instanceof Tensor) return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Tensor>;
  return typeof v.dtype === 'string' && Array.isArray(v.shape) && ArrayBuffer.isView(v.data);
}

/** A shape for a message: its first entries, each shown safely (a hostile entry cannot throw). */
function shapeText(shape: readonly unknown[]): string {
  const head = shape.slice(0, 8).map((d) => shown(d));
  return `[${head.join(', ')}${shape.length > 8 ? `, … (${shape.length} entries)` : ''}]`;
}
