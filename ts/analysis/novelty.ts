/**
 * Open-set novelty (issue 11): how unlike every known defect type a crop and an
 * image are, and a threshold calibrated to a false-alarm rate on images held out
 * from the fit.
 *
 * Three per-crop scores:
 *
 * * `prototype`: the cosine distance of the crop's [CLS] feature to the
 *   nearest cluster prototype, in the feature space centred on the fit crops' mean
 *   feature; a prototype is the normalised mean of the centred, normalised features of
 *   the fit crops assigned to that cluster (recorded in the bundle).
 * * The heads are cosine classifiers (METHOD.md §4.4): a crop's logit for class j is the
 *   cosine similarity between its l2-normalised [CLS] feature and the head's weight row j;
 *   `cosine` = 1 - max_j l_j, the cosine distance to the nearest head
 *   prototype, and `energy` = -T log sum_j exp(l_j / T) over the novel-class logits, T = the
 *   student temperature 0.1 (§7) (the free energy of Liu et al. 2020).
 * * `descriptor` (the default): no backbone at all: the mean Euclidean distance of the crop's
 *   standardised region descriptor (shape and appearance of its mask and pixels,
 *   analysis/descriptors) to its 5 nearest fit crops' descriptors (z-score statistics and
 *   the bank recorded in the bundle).
 *
 * The MTD open-set evaluation (bench/RESULTS.md, "Open-set novelty") chose the default. Of
 * the backbone scores, on a synthetic, clearly novel type the head scores ranked novel crops
 * as *more* typical (the trained heads are confident on inputs unlike anything seen) while the
 * prototype score separated them perfectly (test/66-novelty): choose `prototype` for
 * far-off novelties.
 *
 * An image's novelty is its crops' novelty merged with the region weights of §7
 * (softmax of sqrt(mask area) / tauAlpha), as its class probabilities are.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { regionWeights } from './merge.js';

/** The per-crop novelty scores. */
export const NOVELTY_SCORES = ['prototype', 'energy', 'cosine', 'descriptor'] as const;
export type NoveltyScore = (typeof NOVELTY_SCORES)[number];

/**
 * The default score: the best mean AUROC of the MTD leave-one-type-out evaluation
 * (bench/RESULTS.md, "Open-set novelty" and "Region descriptors": with random-init
 * backbones, descriptor 0.770 vs cosine 0.568, energy 0.565, prototype 0.460 on the reduced
 * set; better than cosine on every held-out type). It needs no backbone; with a pretrained
 * backbone the head scores may do better (not measured here).
 */
export const DEFAULT_NOVELTY_SCORE: NoveltyScore = 'descriptor';

/** Cluster prototypes in the [CLS] feature space (see the module doc). */
export interface FeaturePrototypes {
  /** Mean fit-crop feature, D values. */
  mean: Float64Array;
  /** P prototypes (unit rows, centred space), P x D. */
  rows: Float64Array[];
}

function centredUnit(v: ArrayLike<number>, mean: ArrayLike<number>): Float64Array {
  const out = Float64Array.from({ length: mean.length }, (_, d) => v[d]! - mean[d]!);
  const n = Math.hypot(...out) || 1;
  return out.map((x) => x / n);
}

/**
 * Prototypes from fit-crop features and their clusters: the normalised mean of each
 * non-empty cluster's centred, normalised features.
 */
export function featurePrototypes(features: readonly ArrayLike<number>[], clusters: readonly number[], k: number): FeaturePrototypes {
  if (features.length === 0 || features.length !== clusters.length) throw new InvalidArgumentError('featurePrototypes() needs one cluster per feature, at least one');
  const D = features[0]!.length;
  const mean = new Float64Array(D);
  for (const f of features) for (let d = 0; d < D; d++) mean[d]! += f[d]! / features.length;
  const sums = Array.from({ length: k }, () => new Float64Array(D));
  const counts = new Array<number>(k).fill(0);
  features.forEach((f, i) => {
    const u = centredUnit(f, mean);
    const c = clusters[i]!;
    counts[c]!++;
    for (let d = 0; d < D; d++) sums[c]![d]! += u[d]!;
  });
  const zero = new Float64Array(D);
  return { mean, rows: sums.filter((_, c) => counts[c]! > 0).map((s) => centredUnit(s, zero)) };
}

/** `prototype` novelty of one crop feature: 1 - the largest cosine to a prototype (centred space). */
export function prototypeNovelty(feature: ArrayLike<number>, prototypes: FeaturePrototypes): number {
  const u = centredUnit(feature, prototypes.mean);
  let best = -Infinity;
  for (const p of prototypes.rows) {
    let dot = 0;
    for (let d = 0; d < u.length; d++) dot += u[d]! * p[d]!;
    best = Math.max(best, dot);
  }
  return 1 - best;
}

/** The student temperature of METHOD.md §7 (softmax(logits / 0.1)). */
export const NOVELTY_TEMPERATURE = 0.1;

/** One crop's `energy` or `cosine` novelty from its novel-class cosine logits (higher = less like any known type). */
export function cropNovelty(logits: ArrayLike<number>, score: 'energy' | 'cosine' = 'energy', temperature = NOVELTY_TEMPERATURE): number {
  if (logits.length === 0) throw new InvalidArgumentError('cropNovelty() needs at least one logit');
  let top = -Infinity;
  for (let j = 0; j < logits.length; j++) top = Math.max(top, logits[j]!);
  if (score === 'cosine') return 1 - top;
  if (score !== 'energy') throw new InvalidArgumentError(`cropNovelty(): unknown logit score '${String(score)}' (expected energy or cosine)`);
  let s = 0;
  for (let j = 0; j < logits.length; j++) s += Math.exp((logits[j]! - top) / temperature);
  return -(top + temperature * Math.log(s));
}

/** An image's novelty: its crops' novelty merged with the region weights (METHOD.md §7). */
export function imageNovelty(cropScores: readonly number[], maskAreas: readonly number[], tauAlpha: number): number {
  if (cropScores.length !== maskAreas.length) throw new InvalidArgumentError('imageNovelty(): one mask area per crop score');
  if (cropScores.length === 1) return cropScores[0]!;
  const w = regionWeights(maskAreas, tauAlpha);
  return cropScores.reduce((acc, s, j) => acc + w[j]! * s, 0);
}

/**
 * The threshold for a false-alarm rate `alpha` from the novelty of n held-out known
 * images (split conformal): the k-th smallest score, k = ceil((n + 1)(1 - alpha)),
 * so that a new known image exceeds it with probability at most alpha (exchangeable
 * images). When k > n (too few images for alpha) the largest score is used, and the
 * rate is then only bounded by 1 / (n + 1).
 */
export function calibrateThreshold(scores: readonly number[], alpha: number): number {
  if (scores.length === 0) throw new InvalidArgumentError('calibrateThreshold() needs at least one score');
  if (!(alpha > 0 && alpha < 1)) throw new InvalidArgumentError(`The false-alarm rate must be in (0, 1) (got ${alpha})`);
  const sorted = [...scores].sort((a, b) => a - b);
  const n = sorted.length;
  const k = Math.min(n, Math.ceil((n + 1) * (1 - alpha)));
  return sorted[k - 1]!;
}

/** Area under the ROC curve of `positive` scored above `negative` (ties count one half). */
export function auroc(positive: readonly number[], negative: readonly number[]): number {
  if (positive.length === 0 || negative.length === 0) throw new InvalidArgumentError('auroc() needs positive and negative scores');
  const all = [...positive.map((s) => ({ s, p: 1 })), ...negative.map((s) => ({ s, p: 0 }))].sort((a, b) => a.s - b.s);
  // Mann-Whitney U with mid-ranks.
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.s === all[i]!.s) j++;
    const mid = (i + j) / 2 + 1;
    for (let q = i; q <= j; q++) if (all[q]!.p) rankSum += mid;
    i = j + 1;
  }
  const np = positive.length;
  return (rankSum - (np * (np + 1)) / 2) / (np * negative.length);
}
