// Wrong values for the boundary property test (test/55-boundary-fuzz.test.ts and
// bench/boundary-fuzz.ts): wrong types, dtypes, shapes, NaN/Inf, empty, 1×1,
// huge declared sizes, detached buffers, throwing getters and Proxies.
import { Tensor } from '../../ts/core/tensor.js';

/** What a throwing getter or Proxy trap throws: the caller's own exception, which may pass through unchanged. */
export class CallerBoom extends Error {
  constructor() {
    super('thrown by a getter of the caller');
  }
}

export type Rng = () => number;

export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

/** A TypedArray whose ArrayBuffer has been transferred away (detached, length 0). */
export function detachedArray(kind: 'f32' | 'u8' | 'f64'): Float32Array | Uint8Array | Float64Array {
  const a = kind === 'f32' ? new Float32Array(64) : kind === 'u8' ? new Uint8Array(64) : new Float64Array(64);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function throwingGetter(keys: string[]): object {
  const o: Record<string, unknown> = {};
  for (const k of keys)
    Object.defineProperty(o, k, {
      enumerable: true,
      get() {
        throw new CallerBoom();
      },
    });
  return o;
}

function throwingProxy(): object {
  const boom = () => {
    throw new CallerBoom();
  };
  return new Proxy({}, { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom });
}

/** A Proxy that answers every property read with another wrong value (not throwing). */
function liarProxy(rng: Rng): object {
  return new Proxy(
    {},
    {
      get: (_t, k) => (k === Symbol.iterator || k === 'then' ? undefined : scalar(rng)),
      has: () => true,
    },
  );
}

/** Scalars and small wrong things. */
export function scalar(rng: Rng): unknown {
  return pick(rng, [
    undefined,
    null,
    true,
    false,
    0,
    -1,
    1,
    0.5,
    -0.0,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    2 ** 53,
    1e308,
    -1e308,
    Number.MIN_VALUE,
    '',
    'x',
    '0',
    'NaN',
    '/nonexistent/anomalyncd/file.png',
    '/',
    '\0',
    'a'.repeat(5000),
    10n,
    Symbol('s'),
    () => 1,
    {},
    [],
    [[]],
    new Date(0),
    /re/,
    new Map(),
  ] as unknown[]);
}

/** Tensor-like values that are wrong in one way. */
export function badTensor(rng: Rng): unknown {
  switch (Math.floor(rng() * 22)) {
    case 0: return new Tensor('uint8', [0, 0]);
    case 1: return new Tensor('uint8', [1, 1]);
    case 2: return new Tensor('float32', [1, 1], new Float32Array([NaN]));
    case 3: return new Tensor('float32', [4, 4], new Float32Array(16).fill(Infinity));
    case 4: return new Tensor('float64', [3, 3], new Float64Array(9).fill(-Infinity));
    case 5: return { dtype: 'uint8', shape: [1e9, 1e9], data: new Uint8Array(16) };
    case 6: return { dtype: 'uint8', shape: [65536, 65536], data: new Uint8Array(4) };
    case 7: return { dtype: 'float16', shape: [2, 2], data: new Uint16Array(4) };
    case 8: return { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] };
    case 9: return { dtype: 'float32', shape: [2, 2], data: new Uint8Array(4) };
    case 10: return { dtype: 'uint8', shape: [-1, 4], data: new Uint8Array(4) };
    case 11: return { dtype: 'uint8', shape: [2.5, 2], data: new Uint8Array(5) };
    case 12: return { dtype: 'uint8', shape: ['2', 2], data: new Uint8Array(4) };
    case 13: return { dtype: 'float32', shape: [8, 8], data: detachedArray('f32') };
    case 14: return { dtype: 'uint8', shape: [8, 8], data: detachedArray('u8') };
    case 15: return throwingGetter(['dtype', 'shape', 'data']);
    case 16: return throwingProxy();
    case 17: return liarProxy(rng);
    case 18: return new Tensor('int64', [2, 2]);
    case 19: return new Tensor('int32', [2, 2, 3]);
    case 20: return new Tensor('uint8', [3, 3, 7]);
    default: return new Tensor('uint8', [2, 2, 2, 2]);
  }
}

/** One wrong value of any kind. */
export function wrongValue(rng: Rng, depth = 0): unknown {
  const r = rng();
  if (r < 0.4) return scalar(rng);
  if (r < 0.7) return badTensor(rng);
  if (r < 0.8 && depth < 2) return Array.from({ length: Math.floor(rng() * 3) }, () => wrongValue(rng, depth + 1));
  if (r < 0.85) return new Array(1 << 20); // a huge sparse array
  if (r < 0.9) return throwingGetter(['length', '0', 'image', 'mask', 'k']);
  if (r < 0.95) return throwingProxy();
  return liarProxy(rng);
}

/** `base` with one nested position (argument, option key or array element) replaced by a wrong value. */
export function mutate(rng: Rng, base: readonly unknown[]): unknown[] {
  const args = [...base];
  const n = 1 + Math.floor(rng() * 2);
  for (let m = 0; m < n; m++) {
    const i = Math.floor(rng() * Math.max(args.length + 1, 1));
    if (i >= args.length || rng() < 0.3) {
      args[Math.min(i, args.length)] = wrongValue(rng);
      continue;
    }
    const v = args[i];
    if (Array.isArray(v) && v.length > 0 && rng() < 0.7) {
      const copy = [...v];
      const j = Math.floor(rng() * copy.length);
      const el = copy[j];
      if (el && typeof el === 'object' && !(el instanceof Tensor) && !ArrayBuffer.isView(el) && rng() < 0.5) {
        const keys = Object.keys(el);
        copy[j] = { ...(el as object), [keys.length > 0 && rng() < 0.8 ? pick(rng, keys) : 'extra']: wrongValue(rng, 1) };
      } else copy[j] = wrongValue(rng, 1);
      args[i] = copy;
    } else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tensor) && !(v instanceof AbortSignal) && rng() < 0.8) {
      const keys = Object.keys(v);
      const key = keys.length > 0 && rng() < 0.85 ? pick(rng, keys) : pick(rng, ['bogus', 'threads', 'signal', 'onProgress', '__proto__']);
      args[i] = { ...(v as object), [key]: wrongValue(rng, 1) };
    } else args[i] = wrongValue(rng);
  }
  return args;
}

/** A short description of a value for failure reports. */
export function describe(v: unknown, depth = 0): string {
  try {
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
      if (typeof v === 'bigint') return `${v}n`;
      if (typeof v === 'symbol' || typeof v === 'function') return typeof v;
      return String(v);
    }
    if (v instanceof Tensor) return `Tensor(${v.dtype},[${v.shape.join(',')}])`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as Uint8Array).length})`;
    if (depth > 1) return '{…}';
    if (Array.isArray(v)) return `[${v.length > 4 ? `${v.length} items` : v.map((x) => describe(x, depth + 1)).join(', ')}]`;
    return `{${Object.keys(v)
      .slice(0, 8)
      .map((k) => `${k}: ${describe((v as Record<string, unknown>)[k], depth + 1)}`)
      .join(', ')}}`;
  } catch {
    return '<throwing object>';
  }
}
