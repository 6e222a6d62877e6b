/**
 * Region merging (METHOD.md §7): the crops of one image vote for its defect type,
 * weighted by a softmax over the square roots of their mask areas.
 * @module
 */
import { InvalidArgumentError, shown } from '../core/errors.js';

/** One region of an image: its novel-class probabilities and mask area. */
export interface RegionVote {
  probabilities: ArrayLike<number>;
  /** 255-pixels of the crop's mask at native crop size (METHOD.md T27). */
  maskArea: number;
}

/** The image-level decision. */
export interface MergedPrediction {
  /** argmax of the merged probabilities (first index on ties). */
  cluster: number;
  /** The merged probability vector. */
  probabilities: Float64Array;
  /** The softmax weight of each region. */
  weights: Float64Array;
}

/** Index of the largest value, the first one on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * The region weights of METHOD.md §7: softmax over sqrt(maskArea) / tauAlpha
 * (also used to pool one image's crop features).
 */
export function regionWeights(maskAreas: readonly number[], tauAlpha: number): Float64Array {
  if (maskAreas.length === 0) throw new InvalidArgumentError('regionWeights() needs at least one region');
  if (typeof tauAlpha !== 'number' || !(tauAlpha > 0) || !Number.isFinite(tauAlpha)) throw new InvalidArgumentError(`tauAlpha must be a positive number (got ${shown(tauAlpha)})`);
  const g = maskAreas.map((a) => Math.sqrt(a) / tauAlpha);
  // A loop, not Math.max(...g): a million regions overflowed the stack (test/55-boundary-fuzz).
  let top = -Infinity;
  for (const v of g) if (v > top) top = v;
  const e = g.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return Float64Array.from(e, (v) => v / sum);
}

/**
 * Each image's row from its crops' rows (crops in image order: crop `j` is `row(j)`), summed
 * with the region-merge weights into `out` (images x dim, zeroed). Accumulates in `out`'s
 * own precision, crop by crop.
 */
export function poolCropRows<T extends Float32Array | Float64Array>(
  items: readonly { crops: readonly { maskArea: number }[] }[], row: (j: number) => ArrayLike<number>, dim: number, tauAlpha: number, out: T,
): T {
  let first = 0;
  items.forEach((item, i) => {
    const w = regionWeights(item.crops.map((c) => c.maskArea), tauAlpha);
    item.crops.forEach((_, r) => {
      const f = row(first + r);
      for (let d = 0; d < dim; d++) out[i * dim + d]! += w[r]! * f[d]!;
    });
    first += item.crops.length;
  });
  return out;
}

/**
 * Merges the regions of one image with temperature `tauAlpha` (100 for MVTec
 * AD, 50 otherwise in the reference). One region: its own probabilities.
 */
export function mergeRegions(regions: readonly RegionVote[], tauAlpha: number): MergedPrediction {
  if (!Array.isArray(regions) || regions.length === 0) throw new InvalidArgumentError('mergeRegions() needs a non-empty array of regions');
  // A loop over indices, not forEach: a sparse array's holes must be checked too.
  for (let j = 0; j < regions.length; j++) {
    const v = regions[j] as Partial<RegionVote> | null | undefined;
    if (typeof v !== 'object' || v === null || typeof v.maskArea !== 'number' || typeof (v.probabilities as { length?: unknown } | undefined)?.length !== 'number')
      throw new InvalidArgumentError(`mergeRegions(): regions[${j}] must be {probabilities, maskArea}`);
  }
  const weights = regionWeights(regions.map((r) => r.maskArea), tauAlpha);
  const k = regions[0]!.probabilities.length;
  for (const r of regions)
    if (r.probabilities.length !== k) throw new InvalidArgumentError('every region needs the same number of class probabilities');
  const probabilities = new Float64Array(k);
  if (regions.length === 1) probabilities.set(Array.from(regions[0]!.probabilities));
  else regions.forEach((r, j) => {
    for (let c = 0; c < k; c++) probabilities[c]! += weights[j]! * r.probabilities[c]!;
  });
  return { cluster: argmax(probabilities), probabilities, weights };
}
