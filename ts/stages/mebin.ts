/**
 * MEBin (Main Element Binarization, docs/METHOD.md §2): binarise anomaly maps
 * with one category-wide threshold search range.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { runJob, type JobOptions } from '../core/jobs.js';
import { bool, defaulted, deviceField, int, intRange, optionsObject, rejectUnknownOptions, resolveOptions, threadsField, type AllKeysKnown, type DeviceRequest, type Schema, type SchemaFor } from '../core/options.js';
import { coreAddon } from '../native/loader.js';
import { isTensorLike, Tensor } from '../core/tensor.js';
import type { RawBinarizeOptions, RawTensor } from '../native/addon-types.js';

/**
 * An anomaly map: a path to an 8-bit grayscale image file, a uint8 Tensor
 * [H, W] in raw map units, or a float32/float64 Tensor [H, W] (the float maps
 * of one call are min-max normalised together to 0..255, as the reference's
 * export recipe does).
 */
export type MapInput = string | Tensor;

/** MEBin parameters (docs/METHOD.md §2; defaults as the reference). */
export interface MebinOptions {
  /** Step between swept thresholds on the normalised 0..255 scale (default 4: 64 thresholds). */
  sampleRate?: number;
  /** Shortest run of equal component counts that is stable (default 4). */
  minIntervalLen?: number;
  /** 6x6 erosion before counting and in the final map (default true). */
  erode?: boolean;
  /**
   * Explicit search range `[min, max]` in raw map units, e.g. the range saved
   * from a reference set, to binarise new maps one at a time (docs/METHOD.md §2.1). By
   * default the range comes from the per-map maxima of the maps given.
   */
  range?: [number, number];
}

/** One binarised map. */
export interface MebinMap {
  /** Raw threshold: foreground is `value > threshold` (255 on fallback). */
  threshold: number;
  /** Estimated anomaly count (`est`, 0 on fallback). */
  count: number;
  /** Component count at each swept threshold, threshold 255 first. */
  sequence: number[];
  /** Number of foreground pixels of the binary map. */
  foreground: number;
  /** The binary map, 0/255, [H, W] (unless `returnBinary: false`). */
  binary?: Tensor<'uint8'>;
}

/** Result of {@link binarize}. */
export interface BinarizeResult {
  /** `[min, max]` used for every map. */
  searchRange: [number, number];
  /** Where MEBin ran: `'cpu'` or `'cuda:N'`. */
  device: string;
  maps: MebinMap[];
  timings: { /** Mean compute time per map (decoding excluded). */ mebinMsPerMap: number };
  /** Reference behaviours worth knowing about (degenerate range, 1x1 maps, ...). */
  warnings: string[];
}

/** Options of {@link binarize}. */
export interface BinarizeOptions extends MebinOptions, JobOptions {
  /** Return the binary maps (default true). */
  returnBinary?: boolean;
  /** Use the plain per-threshold OpenCV implementation (the test oracle; slow). */
  oracle?: boolean;
  /** Also write each binary map (0/255 PNG) to `binaryDir/<binaryNames[i]>`. */
  binaryDir?: string;
  /** Relative file names (may contain '/') for `binaryDir`, one per map. */
  binaryNames?: readonly string[];
  /** Device (default `'auto'`): `'cpu' | 'cuda' | 'cuda:N' | 'auto'`; the CUDA path batches every map. */
  device?: DeviceRequest;
}

/**
 * The MEBin options' one table (bounds and defaults of {@link MebinOptions});
 * the C++ side reads the same fields through `visitFields` next to
 * `mebin::Options`. @internal
 */
export const MEBIN_FIELDS = {
  sampleRate: defaulted(int({ min: 1, max: 255, default: 4, doc: 'Threshold step on the normalised 0..255 scale.' })),
  minIntervalLen: defaulted(int({ min: 1, max: 255, default: 4, doc: 'Shortest stable run of equal component counts.' })),
  erode: defaulted(bool({ default: true, doc: '6x6 erosion before counting and in the final map.' })),
  range: intRange({ lo: 0, hi: 255, doc: 'Explicit search range [min, max] in raw map units (min < max).' }),
} as const satisfies SchemaFor<MebinOptions>;

const BINARIZE_FIELDS = {
  ...MEBIN_FIELDS,
  threads: defaulted(threadsField),
  returnBinary: defaulted(bool({ default: true })),
  oracle: defaulted(bool({ default: false })),
  device: deviceField,
} as const satisfies Schema;

/** The {@link BinarizeOptions} outside the field table (checked where used). */
const BINARIZE_OTHER_KEYS = ['binaryDir', 'binaryNames', 'signal', 'onProgress'] as const satisfies readonly (keyof BinarizeOptions)[];
const everyBinarizeKeyKnown: AllKeysKnown<BinarizeOptions, keyof typeof BINARIZE_FIELDS | (typeof BINARIZE_OTHER_KEYS)[number]> = true;
void everyBinarizeKeyKnown;

/** Checks a map argument. @internal */
export function rawMap(value: unknown, label: string): string | RawTensor {
  if (typeof value === 'string') {
    if (value.length === 0) throw new InvalidArgumentError(`${label} is an empty path`);
    return value;
  }
  if (!isTensorLike(value)) throw new InvalidArgumentError(`${label} must be a file path or a Tensor [H, W]`);
  if (value.shape.length !== 2) throw new InvalidArgumentError(`${label} must have shape [H, W] (got [${value.shape.join(', ')}])`);
  if (!['uint8', 'float32', 'float64'].includes(value.dtype))
    throw new InvalidArgumentError(`${label} has dtype ${value.dtype}; expected uint8, float32 or float64`);
  return value;
}

/**
 * Binarises a set of anomaly maps with MEBin on worker threads. The search
 * range comes from the whole set (docs/METHOD.md §2.1) unless `range` is given.
 */
export async function binarize(maps: readonly MapInput[], options: BinarizeOptions = {}): Promise<BinarizeResult> {
  if (!Array.isArray(maps) || maps.length === 0) throw new InvalidArgumentError('binarize() needs a non-empty array of maps');
  rejectUnknownOptions('binarize()', options, [...Object.keys(BINARIZE_FIELDS), ...BINARIZE_OTHER_KEYS]);
  const o = resolveOptions(BINARIZE_FIELDS, options);
  const raw: RawBinarizeOptions = {
    sampleRate: o.sampleRate,
    minIntervalLen: o.minIntervalLen,
    erode: o.erode,
    range: o.range ?? null,
    threads: o.threads,
    returnBinary: o.returnBinary,
    oracle: o.oracle,
    writeDir: '',
    names: [],
    device: o.device,
  };
  const binaryDir: unknown = optionsObject(options, 'binarize(maps, options)').binaryDir;
  if (binaryDir !== undefined) {
    const given: unknown = options.binaryNames;
    const names: unknown[] | undefined = Array.isArray(given) ? [...(given as unknown[])] : undefined;
    if (!names || names.length !== maps.length || !names.every((n) => typeof n === 'string' && n.length > 0 && !n.split('/').includes('..')))
      throw new InvalidArgumentError("Option 'binaryDir' needs 'binaryNames': one relative file name per map");
    if (typeof binaryDir !== 'string') throw new InvalidArgumentError("Option 'binaryDir' must be a folder path");
    raw.writeDir = binaryDir;
    raw.names = names as string[];
  }
  const inputs = maps.map((m, i) => rawMap(m, `maps[${i}]`));
  const native = coreAddon();
  const result = await runJob((onProgress) => native.binarize(inputs, raw, onProgress), options);
  return {
    searchRange: result.searchRange,
    device: result.device,
    maps: result.maps.map((m) => {
      const out: MebinMap = { threshold: m.threshold, count: m.count, sequence: m.sequence, foreground: m.foreground };
      if (o.returnBinary)
        out.binary = new Tensor('uint8', [m.height, m.width], m.binary ? new Uint8Array(m.binary) : new Uint8Array(m.height * m.width));
      return out;
    }),
    timings: { mebinMsPerMap: result.msPerMap },
    warnings: result.warnings,
  };
}
