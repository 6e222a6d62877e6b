/**
 * NumPy `.npy` (format 1.0–3.0) reading and writing for the dtypes the library
 * uses: float32, float64, uint8, int32, int64; little-endian, C order.
 * @module
 */
import { BadInputError, InvalidArgumentError } from '../core/errors.js';
import { isTensorLike, Tensor, type DType } from '../core/tensor.js';
import { readFileBytes, writeFileAtomic } from './files.js';

const descrToDtype: Record<string, DType> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '|i1': 'uint8',
  '<i4': 'int32',
  '<i8': 'int64',
};
const dtypeToDescr: Record<DType, string> = {
  float32: '<f4',
  float64: '<f8',
  uint8: '|u1',
  int32: '<i4',
  int64: '<i8',
};
const bytesPer: Record<DType, number> = { float32: 4, float64: 8, uint8: 1, int32: 4, int64: 8 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** Parses `.npy` bytes; `name` appears in error messages. The result owns a copy aligned for its dtype. */
export function parseNpy(bytes: Uint8Array, name = 'buffer'): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('parseNpy() needs the file bytes as a Uint8Array (or Buffer)');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new BadInputError(`${name} is not a .npy file (bad magic)`);
  const major = buf[6]!;
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new BadInputError(`${name} is truncated`);
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else throw new BadInputError(`${name}: unsupported .npy version ${major}`);
  if (offset + headerLen > buf.length) throw new BadInputError(`${name} is truncated (header)`);
  const header = buf.subarray(offset, offset + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new BadInputError(`${name}: malformed .npy header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw new BadInputError(`${name}: Fortran-order arrays are not supported; save with np.ascontiguousarray`);
  // Own keys only: a descr such as 'toString' must not find Object.prototype's (found by test/56-parser-fuzz).
  const dtype = Object.hasOwn(descrToDtype, descr) ? descrToDtype[descr] : undefined;
  if (!dtype) throw new BadInputError(`${name}: dtype '${descr}' is not supported (float32, float64, uint8, int32, int64 little-endian)`);
  if (descr === '|i1') throw new BadInputError(`${name}: int8 arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new BadInputError(`${name}: bad shape (${shapeText})`);
  const dataStart = offset + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * bytesPer[dtype];
  if (buf.length - dataStart < byteLength)
    throw new BadInputError(`${name} is truncated: expected ${byteLength} data bytes, found ${buf.length - dataStart}`);
  // Copy into a fresh, aligned buffer: the file's data offset need not be aligned.
  const raw = new Uint8Array(byteLength);
  raw.set(buf.subarray(dataStart, dataStart + byteLength));
  const data = (() => {
    switch (dtype) {
      case 'float32': return new Float32Array(raw.buffer);
      case 'float64': return new Float64Array(raw.buffer);
      case 'uint8': return raw;
      case 'int32': return new Int32Array(raw.buffer);
      case 'int64': return new BigInt64Array(raw.buffer);
    }
  })();
  return new Tensor(dtype, shape, data as never);
}

/** Reads a `.npy` file. */
export async function readNpy(path: string): Promise<Tensor> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('readNpy() needs a file path');
  const bytes = await readFileBytes(path);
  return parseNpy(bytes, `'${path}'`);
}

/** Serialises a tensor as `.npy` version 1.0 bytes. */
export function formatNpy(tensor: Tensor): Buffer {
  // Rebuilt through the constructor, which checks dtype, shape and data length (a detached array has none).
  if (!isTensorLike(tensor)) throw new InvalidArgumentError('formatNpy() needs a Tensor');
  tensor = new Tensor(tensor.dtype, tensor.shape, tensor.data as never);
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(', ')})`;
  let header = `{'descr': '${dtypeToDescr[tensor.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(d.buffer, d.byteOffset, d.byteLength)]);
}

/** Writes a tensor as `.npy`, atomically (temp file + rename). */
export async function writeNpy(path: string, tensor: Tensor): Promise<void> {
  await writeFileAtomic(path, formatNpy(tensor));
}
