/**
 * The one command-line flag parser. Each command declares a table (flag name →
 * how its value is read, whether it is required, its default and one line of
 * help); {@link parseFlags} turns `--flag value`, `--flag=value` and boolean
 * `--flag` into an object keyed by the camel-cased names, and
 * {@link flagHelp} prints the table. Every failure is an
 * {@link InvalidArgumentError} (exit code 2).
 * @internal
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { deviceField, type DeviceRequest } from '../core/options.js';

/** How one flag is read. */
export interface Flag<T = unknown> {
  /** `false`: a switch, present or absent (`--json`). */
  readonly takesValue: boolean;
  /** Turns the text after the flag into its value, or throws. */
  parse(text: string, flag: string): T;
  /** `true`, or the message to show when it is missing (default `--name is required`). */
  readonly required?: boolean | string;
  /** The value when the flag is absent. */
  readonly default?: T;
  /** What the value looks like in help, e.g. `DIR`. */
  readonly placeholder?: string;
  readonly help?: string;
}

/** A command's flags. */
export type FlagTable = Readonly<Record<string, Flag>>;

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
type Present<F> = F extends { readonly required: true | string } ? true : F extends { readonly default: unknown } ? true : F extends { readonly takesValue: false } ? true : false;

/** What {@link parseFlags} returns: required, defaulted and switch flags present, the rest optional. */
export type ParsedFlags<T extends FlagTable> = {
  -readonly [K in keyof T & string as Present<T[K]> extends true ? Camel<K> : never]: T[K] extends Flag<infer V> ? V : never;
} & {
  -readonly [K in keyof T & string as Present<T[K]> extends true ? never : Camel<K>]?: T[K] extends Flag<infer V> ? V : never;
};

interface Common<T> {
  required?: boolean | string;
  default?: T;
  placeholder?: string;
  help?: string;
}

function valueFlag<T, const O extends Common<T>>(parse: (text: string, flag: string) => T, placeholder: string, o: O): Flag<T> & O {
  return { takesValue: true, parse, placeholder, ...o };
}

/** A text value. */
export function text<const O extends Common<string>>(o: O = {} as O): Flag<string> & O {
  return valueFlag((v) => v, 'VALUE', o);
}

/** A non-negative integer. */
export function count<const O extends Common<number>>(o: O = {} as O): Flag<number> & O {
  return valueFlag(
    (v, flag) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${flag} must be a non-negative integer (got '${v}')`);
      return Number(v);
    },
    'N',
    o,
  );
}

/** A finite number above zero. */
export function positive<const O extends Common<number>>(o: O = {} as O): Flag<number> & O {
  return valueFlag(
    (v, flag) => {
      const x = Number(v);
      if (v.trim() === '' || !Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${flag} must be a positive number (got '${v}')`);
      return x;
    },
    'X',
    o,
  );
}

/** One of a few words. */
export function choice<const V extends string, const O extends Common<V>>(values: readonly V[], o: O = {} as O): Flag<V> & O {
  const list = `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
  return valueFlag(
    (v, flag) => {
      if (!(values as readonly string[]).includes(v)) throw new InvalidArgumentError(`${flag} must be ${list} (got '${v}')`);
      return v as V;
    },
    values.join('|'),
    o,
  );
}

/** A value read by `parse` (which throws {@link InvalidArgumentError} with its own message). */
export function custom<T, const O extends Common<T>>(parse: (text: string, flag: string) => T, o: O = {} as O): Flag<T> & O {
  return valueFlag(parse, 'VALUE', o);
}

/** `--device cpu|cuda|cuda:N|auto` (every command that creates work; the library resolves it). */
export const deviceFlag = custom((v, flag): DeviceRequest => deviceField.check(v, flag), {
  placeholder: 'cpu|cuda|cuda:N|auto',
  help: "Device (default auto: the GPU when the build has CUDA and one is present, else the CPU).",
});

/** `--precision fp32|bf16` (commands that run the ViT). */
export const precisionFlag = choice(['fp32', 'bf16'] as const, { help: 'ViT precision (default fp32; bf16: autocast, fast on AVX512-BF16/AMX CPUs and GPUs).' });

/** A switch: `true` when given, else `false`. */
export function toggle(o: { help?: string } = {}): Flag<boolean> & { readonly takesValue: false } {
  return { takesValue: false, parse: () => true, ...o };
}

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Parses `args` (the words after the command name) against `table`.
 * Unknown flags, bare words, a switch given a value, a value flag without
 * one, malformed values and missing required flags are usage errors; a flag
 * given twice keeps its last value.
 */
export function parseFlags<T extends FlagTable>(command: string, table: T, args: readonly string[]): ParsedFlags<T> {
  const names = Object.keys(table);
  const given = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new InvalidArgumentError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const flag = table[name];
    if (flag === undefined)
      throw new InvalidArgumentError(`'anomalyncd ${command}' has no option --${name} (options: ${names.map((a) => '--' + a).join(' ')})`);
    if (!flag.takesValue) {
      if (eq >= 0) throw new InvalidArgumentError(`--${name} takes no value`);
      given.set(name, true);
    } else if (eq >= 0) given.set(name, arg.slice(eq + 1));
    else {
      const value = args[++i];
      if (value === undefined) throw new InvalidArgumentError(`--${name} needs a value`);
      given.set(name, value);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(table)) {
    const v = given.get(name);
    if (!flag.takesValue) out[camel(name)] = v === true;
    else if (typeof v === 'string') out[camel(name)] = flag.parse(v, `--${name}`);
    else if (flag.default !== undefined) out[camel(name)] = flag.default;
    else if (flag.required) throw new InvalidArgumentError(typeof flag.required === 'string' ? flag.required : `--${name} is required`);
  }
  return out as ParsedFlags<T>;
}

/** The same table with other defaults (e.g. `demo` is `discover` with the embedded data set). */
export function withDefaults<T extends FlagTable>(table: T, defaults: { [K in keyof T]?: T[K] extends Flag<infer V> ? V : never }): T {
  const out: Record<string, Flag> = { ...table };
  for (const [name, value] of Object.entries(defaults)) out[name] = { ...table[name]!, default: value };
  return out as T;
}

/** One line per flag: `--name PLACEHOLDER  help (default …, required)`. */
export function flagHelp(command: string, table: FlagTable): string {
  const rows = Object.entries(table).map(([name, f]) => {
    const left = `--${name}${f.takesValue ? ` ${f.placeholder ?? 'VALUE'}` : ''}`;
    const notes = [f.required ? 'required' : '', f.default !== undefined ? `default ${String(f.default)}` : ''].filter(Boolean).join(', ');
    return [left, `${f.help ?? ''}${notes ? ` (${notes})` : ''}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  return `anomalyncd ${command} [options]\n\n${rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`.trimEnd()).join('\n')}\n`;
}

/** `--masks-as-maps [--mask-level N]` (discover, regions, predict): binary masks used directly as the binary maps. */
export const MASK_MAP_FLAGS = {
  'masks-as-maps': toggle({ help: 'Use each map, binarised at --mask-level, as the binary map (no MEBin; for binary masks).' }),
  'mask-level': count({ placeholder: 'N', help: 'With --masks-as-maps: foreground = value >= N (1..255, default 128).' }),
} as const;

/** The masks-as-maps options of parsed {@link MASK_MAP_FLAGS}; `--mask-level` alone is a usage error. */
export function maskMapOptions(flags: { masksAsMaps: boolean; maskLevel?: number | undefined }): { masksAsMaps?: boolean; maskLevel?: number } {
  if (flags.maskLevel !== undefined && !flags.masksAsMaps) throw new InvalidArgumentError('--mask-level needs --masks-as-maps');
  return flags.masksAsMaps ? { masksAsMaps: true, ...(flags.maskLevel !== undefined ? { maskLevel: flags.maskLevel } : {}) } : {};
}
