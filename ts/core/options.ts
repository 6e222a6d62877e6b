/**
 * One table per option set: each field's type, bounds, default and doc in one
 * place. `resolveOptions` validates a caller's object against its table and
 * returns a NEW plain object with every field filled — the only thing handed to
 * native code (never the caller's object: a getter could answer differently the
 * second time). The binding reads that object without defaults of its own.
 * @internal
 * @module
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, shown } from './errors.js';

/** How one option is checked and defaulted. */
export interface Field<T> {
  /** Validates a present value (`name` as the user spelled it) and returns it, normalised. */
  check(value: unknown, name: string): T;
  /** The default when absent; `undefined` with `required` false means "stays absent". */
  readonly default?: T | (() => T);
  readonly required?: boolean;
  /** One line for docs and `--help`. */
  readonly doc?: string;
}

/** A table of option fields. */
export type Schema = Record<string, Field<unknown>>;

/** The value type a field produces. */
export type FieldType<F> = F extends Field<infer T> ? T : never;

type HasDefault<F> = F extends { readonly default: unknown } ? true : F extends { readonly required: true } ? true : false;

/**
 * A table that covers exactly the fields of the documented options type `T`,
 * each with `T`'s value type: `TABLE satisfies SchemaFor<Options>` makes the
 * compiler keep the typed API and its table in step.
 */
export type SchemaFor<T> = { [K in keyof T]-?: Field<NonNullable<T[K]>> };

/** What `resolveOptions` returns: defaulted and required fields present, the rest optional. */
export type Resolved<S extends Schema> = {
  -readonly [K in keyof S as HasDefault<S[K]> extends true ? K : never]: FieldType<S[K]>;
} & {
  -readonly [K in keyof S as HasDefault<S[K]> extends true ? never : K]?: FieldType<S[K]>;
};

/** What a caller may pass: every field optional (required ones are checked at run time). */
export type Input<S extends Schema> = { [K in keyof S]?: FieldType<S[K]> };

const show = (v: unknown): string => {
  try {
    return typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));
  } catch {
    return shown(v);
  }
};

/**
 * A built field's type with what its options show: `default` given → always filled by
 * `resolveOptions`; `required: true` → must be given. (So `Resolved<>` knows which
 * fields are present without casts.)
 */
export type Shaped<T, O> = Field<T> &
  (O extends { default: unknown } ? { readonly default: T | (() => T) } : unknown) &
  (O extends { required: true } ? { readonly required: true } : unknown);

/** An integer in [min, max]. */
export function int<const O extends { min: number; max: number; default?: number | (() => number); required?: boolean; doc?: string }>(o: O): Shaped<number, O> {
  return <Shaped<number, O>>{
    ...o,
    check(v, name) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < o.min || v > o.max)
        throw new InvalidArgumentError(`Option '${name}' must be an integer in ${o.min}..${o.max} (got ${show(v)})`);
      return v;
    },
  };
}

/** A finite number in [min, max] (`gt`: strictly above min). */
export function num<const O extends { min: number; max: number; gt?: boolean; default?: number; required?: boolean; doc?: string }>(o: O): Shaped<number, O> {
  return <Shaped<number, O>>{
    ...o,
    check(v, name) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < o.min || v > o.max || (o.gt && v === o.min))
        throw new InvalidArgumentError(`Option '${name}' must be a number in ${o.gt ? '(' : ''}${o.min}..${o.max} (got ${show(v)})`);
      return v;
    },
  };
}

/** A boolean. */
export function bool<const O extends { default?: boolean; required?: boolean; doc?: string } = {}>(o: O = {} as O): Shaped<boolean, O> {
  return <Shaped<boolean, O>>{
    ...o,
    check(v, name) {
      if (typeof v !== 'boolean') throw new InvalidArgumentError(`Option '${name}' must be a boolean (got ${show(v)})`);
      return v;
    },
  };
}

/** A string (non-empty unless `allowEmpty`). */
export function str<const O extends { default?: string; required?: boolean; allowEmpty?: boolean; doc?: string } = {}>(o: O = {} as O): Shaped<string, O> {
  return <Shaped<string, O>>{
    ...o,
    check(v, name) {
      if (typeof v !== 'string' || (!o.allowEmpty && v.length === 0))
        throw new InvalidArgumentError(`Option '${name}' must be a${o.allowEmpty ? '' : ' non-empty'} string (got ${show(v)})`);
      return v;
    },
  };
}

/** One of a fixed set of strings. */
export function oneOf<const T extends string, const O extends { default?: T; required?: boolean; doc?: string } = {}>(values: readonly T[], o: O = {} as O): Shaped<T, O> {
  return <Shaped<T, O>>{
    ...o,
    check(v, name) {
      if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
        throw new InvalidArgumentError(`Option '${name}' must be one of ${values.map((x) => `'${x}'`).join(', ')} (got ${show(v)})`);
      return v as T;
    },
  };
}

/** An integer range `[min, max]` with min < max (`allowEqual`: min <= max), each in [lo, hi]. */
export function intRange<const O extends { lo: number; hi: number; allowEqual?: boolean; default?: [number, number]; required?: boolean; doc?: string }>(o: O): Shaped<[number, number], O> {
  return <Shaped<[number, number], O>>{
    ...o,
    check(v, name) {
      const ok =
        Array.isArray(v) &&
        v.length === 2 &&
        v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= o.lo && x <= o.hi) &&
        (o.allowEqual ? v[0] <= v[1] : v[0] < v[1]);
      if (!ok)
        throw new InvalidArgumentError(
          `Option '${name}' must be [min, max] with integers in ${o.lo}..${o.hi} and min ${o.allowEqual ? '<=' : '<'} max (got ${show(v)})`,
        );
      return [v[0], v[1]] as [number, number];
    },
  };
}

/**
 * Asserts that `field` has a default (the builders' types already show it; this
 * keeps fields built elsewhere, e.g. shared ones, explicit).
 */
export function defaulted<T>(field: Field<T>): Field<T> & { readonly default: T | (() => T) } {
  if (field.default === undefined) throw new Error('defaulted() needs a field with a default');
  return field as Field<T> & { readonly default: T | (() => T) };
}

/** `field` typed as required by `resolveOptions` (see {@link defaulted}). */
export function required<T>(field: Field<T>): Field<T> & { readonly required: true } {
  if (field.required !== true) throw new Error('required() needs a field with required: true');
  return field as Field<T> & { readonly required: true };
}

/** Where a call runs: the CPU, a CUDA device, or `'auto'` (the GPU when the build has CUDA and a device is present, else the CPU). */
export type DeviceRequest = 'cpu' | 'cuda' | `cuda:${number}` | 'auto';

/**
 * The `device` option of every call that creates work or models: `'cpu' | 'cuda' |
 * 'cuda:N' | 'auto'` (default `'auto'`). Checked here for its form; resolved natively in
 * one place (`cpp/common/device.h`), where an unmet CUDA request is a `DeviceError`.
 */
export const deviceField = <Shaped<DeviceRequest, { default: DeviceRequest }>>{
  default: 'auto',
  doc: "Device: 'cpu', 'cuda', 'cuda:N' or 'auto' (the GPU when the build has CUDA and one is present, else the CPU).",
  check(v, name) {
    if (typeof v !== 'string' || !/^(cpu|auto|cuda(:[0-9]{1,4})?)$/.test(v))
      throw new InvalidArgumentError(`Option '${name}' must be 'cpu', 'cuda', 'cuda:N' or 'auto' (got ${show(v)})`);
    return v as DeviceRequest;
  },
};

/** Numeric precision of the ViT: float32, or bfloat16 autocast (float32 weights and accumulation). */
export type Precision = 'fp32' | 'bf16';

/** The `precision` option of the model calls: `'fp32'` (default, as the reference) or `'bf16'`. */
export const precisionField = oneOf(['fp32', 'bf16'] as const, {
  default: 'fp32',
  doc: "ViT precision: 'fp32' (default) or 'bf16' (autocast; fast on CPUs with AVX512-BF16/AMX and on GPUs).",
});

/** The `threads` option every heavy call takes: default all available cores. */
export const threadsField = int({ min: 1, max: 1024, default: () => availableParallelism(), doc: 'Worker threads (default: all available cores).' });

/**
 * The caller's options argument when it is an object; a typed error naming the call
 * otherwise (`null` or a primitive where options go). @internal
 */
export function optionsObject<T>(options: T, call: string): T {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${call}: options must be an object`);
  return options;
}

/**
 * Validates `input` against `schema` and returns a new plain object with every
 * defaulted field filled. Each property of `input` is read exactly once.
 * Properties not in the schema are ignored (callers pass `signal`, callbacks, ...).
 * `prefix` qualifies names in messages (e.g. `'arch.'`).
 */
export function resolveOptions<S extends Schema>(schema: S, input: unknown, prefix = ''): Resolved<S> {
  if (input !== undefined && input !== null && (typeof input !== 'object' || Array.isArray(input)))
    throw new InvalidArgumentError(`Options${prefix ? ` '${prefix.replace(/\.$/, '')}'` : ''} must be an object (got ${show(input)})`);
  const source = (input ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema)) {
    const name = prefix + key;
    let value: unknown;
    try {
      value = source[key];
    } catch (e) {
      // A throwing getter is the caller's bug, but it must surface as one of our typed errors.
      throw new InvalidArgumentError(`Option '${name}' could not be read: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    if (value === undefined) {
      if (field.default !== undefined) out[key] = typeof field.default === 'function' ? (field.default as () => unknown)() : structuredClone(field.default);
      else if (field.required) throw new InvalidArgumentError(`Option '${name}' is required`);
      continue;
    }
    out[key] = field.check(value, name);
  }
  return out as Resolved<S>;
}

/** Levenshtein distance (for "did you mean"). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Compile-time: `true` when every key of the options type `O` is among `K` (keeps the known lists complete). */
export type AllKeysKnown<O, K extends PropertyKey> = Exclude<keyof O, K> extends never ? true : never;

/**
 * Refuses option keys a call does not know (a typo such as `kMethd` would otherwise be
 * ignored silently and the default used), naming the closest known key when one is near.
 */
export function rejectUnknownOptions(fn: string, input: unknown, known: Iterable<string>): void {
  if (input === undefined || input === null || typeof input !== 'object') return;
  const names = [...known];
  const allowed = new Set(names);
  for (const key of Object.keys(input)) {
    if (allowed.has(key)) continue;
    let best = '', bestD = Infinity;
    for (const k of names) {
      const d = editDistance(key.toLowerCase(), k.toLowerCase());
      if (d < bestD) [best, bestD] = [k, d];
    }
    const hint = bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean '${best}'?)` : '';
    throw new InvalidArgumentError(`${fn}: unknown option '${key}'${hint}; known options: ${names.slice().sort().join(', ')}`);
  }
}

/** The defaults of a schema (for docs, `--help` and tests). */
export function defaultsOf<S extends Schema>(schema: S): Partial<Record<keyof S, unknown>> {
  const out: Partial<Record<keyof S, unknown>> = {};
  for (const [key, field] of Object.entries(schema)) {
    if (field.default !== undefined) out[key as keyof S] = typeof field.default === 'function' ? (field.default as () => unknown)() : field.default;
  }
  return out;
}
