/**
 * Size limits: absurd inputs (a 100k x 100k image header, a checkpoint declaring a
 * terabyte tensor, millions of crops) are refused with a {@link LimitError} naming the
 * limit, before memory is allocated, instead of an out-of-memory kill. The defaults accept
 * real industrial inputs (an 8k x 8k map is 2^26 pixels); raise a limit when an input is
 * genuine. Limits are process-wide: they apply to every thread and worker thread.
 * @module
 */
import { coreAddon, loadedAddons } from '../native/loader.js';
import { InvalidArgumentError } from './errors.js';

/** The size limits (see {@link setLimits}). */
export interface Limits {
  /** Pixels (width x height) of one image or anomaly map: from the file header before decoding, or a Tensor's shape. Default 2^27 (134,217,728); at most 2^30. */
  maxPixels: number;
  /** Crops in one call (embedCrops, preprocess, fit, predict). Default 2^20; at most 2^31. */
  maxCrops: number;
  /** Elements of one input Tensor, and of one checkpoint or bundle tensor as its file declares it. Default 2^30; at most 2^40. */
  maxTensorElements: number;
}

/** The defaults (kept identical to `cpp/common/limits.h`). */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({ maxPixels: 2 ** 27, maxCrops: 2 ** 20, maxTensorElements: 2 ** 30 });
const CEILINGS: Readonly<Limits> = Object.freeze({ maxPixels: 2 ** 30, maxCrops: 2 ** 31, maxTensorElements: 2 ** 40 });

/** The current limits (process-wide). */
export function getLimits(): Limits {
  return { ...coreAddon().getLimits() };
}

/**
 * Changes some limits (the others keep their values) and returns the new set. Values are
 * integers >= 1, at most their ceilings (maxPixels 2^30, maxCrops 2^31, maxTensorElements
 * 2^40). Process-wide: it affects calls in every thread, including running workers.
 *
 * ```ts
 * setLimits({ maxPixels: 2 ** 28 });   // 16k x 16k maps
 * ```
 */
export function setLimits(limits: Partial<Limits>): Limits {
  if (typeof limits !== 'object' || limits === null) throw new InvalidArgumentError('setLimits() needs an object such as { maxPixels: 2 ** 28 }');
  const next = getLimits();
  for (const key of Object.keys(limits)) {
    if (!(key in DEFAULT_LIMITS)) throw new InvalidArgumentError(`Unknown limit '${key}' (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
    const v = (limits as Record<string, unknown>)[key];
    const ceiling = CEILINGS[key as keyof Limits];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > ceiling)
      throw new InvalidArgumentError(`Limit '${key}' must be an integer in [1, ${ceiling}] (got ${String(v)})`);
    next[key as keyof Limits] = v;
  }
  // Every loaded addon has its own copy of the values; one loaded later copies the core's.
  for (const addon of loadedAddons()) addon.setLimits(next);
  return { ...next };
}
