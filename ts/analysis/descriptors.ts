/**
 * Region descriptors (issue 11): a fixed-length, label-free vector per crop computed from
 * the crop's binary mask and its pixels — shape (size, compactness, elongation, thickness,
 * extent, solidity, components) and appearance (gray level and gradient inside the mask
 * versus a surrounding ring, contrast, a three-bin histogram of the inside relative to the
 * ring). Randomly initialised backbones carry little defect-type information; these
 * measurements carry some directly (blowholes small and round, cracks thin and long, uneven
 * regions large and low-contrast). They are standardised (z-scores, statistics of the fit
 * set) before use: K estimation on them (`kFeatures`) and the `descriptor` novelty score
 * (kNN distance to the fit crops' standardised descriptors, recorded in the bundle).
 *
 * A crop with an empty mask (an empty map's whole-image crop) gets the `empty` flag, zero
 * shape features and the appearance of the whole crop.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

/** The descriptor's components, in order. */
export const DESCRIPTOR_NAMES = [
  'logArea', // log(1 + mask pixels)
  'logCompactness', // log(P^2 / (4 pi A)), P = 4-neighbour boundary edges
  'logElongation', // 0.5 log(l1 / l2) of the mask's second moments
  'logThickness', // log(2 A / P): mean width
  'extent', // A / area of the mask's bounding box
  'solidity', // A / area of the convex hull of the mask's pixel squares
  'logComponents', // log(8-connected components)
  'meanIn', // gray level inside the mask (0..1)
  'stdIn',
  'meanRing', // gray level in a ring around the mask
  'stdRing',
  'contrast', // (meanIn - meanRing) / (stdRing + 0.02)
  'gradIn', // mean Sobel magnitude inside
  'gradRing', // mean Sobel magnitude in the ring
  'darkFraction', // inside pixels below meanRing - stdRing
  'brightFraction', // inside pixels above meanRing + stdRing
  'empty', // 1 when the mask is empty
] as const;
/** Length of a descriptor. */
export const DESCRIPTOR_DIM = DESCRIPTOR_NAMES.length;

/** Half-width of the ring around the mask: max(2, min(15, round(sqrt(A) / 4))) pixels. */
function ringRadius(area: number): number {
  return Math.max(2, Math.min(15, Math.round(Math.sqrt(area) / 4)));
}

/** Square (Chebyshev) dilation of a 0/1 mask by r, separable running counts. */
function dilate(m: Uint8Array, h: number, w: number, r: number): Uint8Array {
  const tmp = new Uint8Array(h * w);
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    let c = 0;
    for (let x = 0; x < Math.min(w, r); x++) c += m[y * w + x]!;
    for (let x = 0; x < w; x++) {
      if (x + r < w) c += m[y * w + x + r]!;
      if (x - r - 1 >= 0) c -= m[y * w + x - r - 1]!;
      tmp[y * w + x] = c > 0 ? 1 : 0;
    }
  }
  for (let x = 0; x < w; x++) {
    let c = 0;
    for (let y = 0; y < Math.min(h, r); y++) c += tmp[y * w + x]!;
    for (let y = 0; y < h; y++) {
      if (y + r < h) c += tmp[(y + r) * w + x]!;
      if (y - r - 1 >= 0) c -= tmp[(y - r - 1) * w + x]!;
      out[y * w + x] = c > 0 ? 1 : 0;
    }
  }
  return out;
}

/** Number of 8-connected components of a 0/1 mask. */
function components(m: Uint8Array, h: number, w: number): number {
  const seen = new Uint8Array(h * w);
  const stack: number[] = [];
  let count = 0;
  for (let s = 0; s < h * w; s++) {
    if (!m[s] || seen[s]) continue;
    count++;
    seen[s] = 1;
    stack.push(s);
    while (stack.length) {
      const p = stack.pop()!;
      const py = Math.floor(p / w), px = p - py * w;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const y = py + dy, x = px + dx;
          if (y < 0 || y >= h || x < 0 || x >= w) continue;
          const q = y * w + x;
          if (m[q] && !seen[q]) {
            seen[q] = 1;
            stack.push(q);
          }
        }
    }
  }
  return count;
}

/** Area of the convex hull of the pixel squares of a 0/1 mask (monotone chain over each row's extreme corners). */
function hullArea(m: Uint8Array, h: number, w: number): number {
  const pts: [number, number][] = [];
  for (let y = 0; y < h; y++) {
    let lo = -1, hi = -1;
    for (let x = 0; x < w; x++)
      if (m[y * w + x]) {
        if (lo < 0) lo = x;
        hi = x;
      }
    if (lo < 0) continue;
    pts.push([lo, y], [lo, y + 1], [hi + 1, y], [hi + 1, y + 1]);
  }
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: [number, number], a: [number, number], b: [number, number]): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: [number, number][] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  const hull = [...lower.slice(0, -1), ...upper.slice(0, -1)];
  let a = 0;
  for (let i = 0; i < hull.length; i++) {
    const p = hull[i]!, q = hull[(i + 1) % hull.length]!;
    a += p[0] * q[1] - q[0] * p[1];
  }
  return Math.abs(a) / 2;
}

function checkCrop(image: Tensor, mask: Tensor): [number, number, number] {
  if (!image || image.dtype !== 'uint8' || !mask || mask.dtype !== 'uint8') throw new InvalidArgumentError('regionDescriptor() needs uint8 image and mask tensors');
  const [h, w] = image.shape as number[];
  const c = image.shape.length === 3 ? image.shape[2]! : 1;
  const maskOk = (mask.shape.length === 2 || (mask.shape.length === 3 && mask.shape[2] === 1)) && mask.shape[0] === h && mask.shape[1] === w;
  if ((image.shape.length !== 2 && image.shape.length !== 3) || (c !== 3 && c !== 1) || !maskOk || !(h! > 0 && w! > 0))
    throw new InvalidArgumentError(`regionDescriptor(): image [h, w, 3], [h, w, 1] or [h, w] and mask [h, w] must match (got [${image.shape.join(', ')}] and [${mask.shape.join(', ')}])`);
  return [h!, w!, c];
}

/**
 * The descriptor of one crop (see {@link DESCRIPTOR_NAMES}): `image` RGB (or gray)
 * uint8 `[h, w, 3]` (`[h, w, 1]`, `[h, w]`), `mask` uint8 `[h, w]` (foreground = nonzero), as `extractRegions`
 * returns them (crops are cut at native resolution, so the area is the region's size in
 * the original image).
 */
export function regionDescriptor(image: Tensor, mask: Tensor): Float64Array {
  const [h, w, c] = checkCrop(image, mask);
  const n = h * w;
  const px = image.data as Uint8Array, md = mask.data as Uint8Array;
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = c === 3 ? (0.299 * px[3 * i]! + 0.587 * px[3 * i + 1]! + 0.114 * px[3 * i + 2]!) / 255 : px[i]! / 255;
  const m = new Uint8Array(n);
  let A = 0;
  for (let i = 0; i < n; i++) if (md[i]) {
    m[i] = 1;
    A++;
  }
  // Sobel gradient magnitude (replicated border).
  const grad = new Float32Array(n);
  const at = (y: number, x: number): number => g[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))]!;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const gx = at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y, x - 1) - at(y + 1, x - 1);
      const gy = at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y - 1, x) - at(y - 1, x + 1);
      grad[y * w + x] = Math.hypot(gx, gy) / 8;
    }
  const stats = (sel: (i: number) => boolean): { mean: number; std: number; grad: number; count: number } => {
    let s = 0, s2 = 0, sg = 0, k = 0;
    for (let i = 0; i < n; i++)
      if (sel(i)) {
        s += g[i]!;
        s2 += g[i]! * g[i]!;
        sg += grad[i]!;
        k++;
      }
    if (k === 0) return { mean: 0, std: 0, grad: 0, count: 0 };
    const mean = s / k;
    return { mean, std: Math.sqrt(Math.max(0, s2 / k - mean * mean)), grad: sg / k, count: k };
  };
  const d = new Float64Array(DESCRIPTOR_DIM);
  if (A === 0) {
    const all = stats(() => true);
    d.set([0, 0, 0, 0, 0, 0, 0, all.mean, all.std, all.mean, all.std, 0, all.grad, all.grad, 0, 0, 1]);
    return d;
  }
  // Shape: boundary edges, moments, bounding box.
  let P = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  let x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!m[y * w + x]) continue;
      if (x === 0 || !m[y * w + x - 1]) P++;
      if (x === w - 1 || !m[y * w + x + 1]) P++;
      if (y === 0 || !m[(y - 1) * w + x]) P++;
      if (y === h - 1 || !m[(y + 1) * w + x]) P++;
      sx += x;
      sy += y;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  const mx = sx / A, my = sy / A;
  // + 1/12: the second moment of a unit pixel square, so a single pixel is round.
  const cxx = sxx / A - mx * mx + 1 / 12, cyy = syy / A - my * my + 1 / 12, cxy = sxy / A - mx * my;
  const tr = cxx + cyy, disc = Math.sqrt(Math.max(0, ((cxx - cyy) / 2) ** 2 + cxy * cxy));
  const l1 = tr / 2 + disc, l2 = Math.max(1e-12, tr / 2 - disc);
  const ring = dilate(m, h, w, ringRadius(A));
  const inside = stats((i) => m[i] === 1);
  let outside = stats((i) => ring[i] === 1 && m[i] === 0);
  if (outside.count === 0) outside = inside; // the mask fills the crop
  let dark = 0, bright = 0;
  for (let i = 0; i < n; i++)
    if (m[i]) {
      if (g[i]! < outside.mean - outside.std) dark++;
      else if (g[i]! > outside.mean + outside.std) bright++;
    }
  d.set([
    Math.log1p(A),
    Math.log((P * P) / (4 * Math.PI * A)),
    0.5 * Math.log(l1 / l2),
    Math.log((2 * A) / P),
    A / ((x1 - x0 + 1) * (y1 - y0 + 1)),
    Math.min(1, A / Math.max(1, hullArea(m, h, w))),
    Math.log(components(m, h, w)),
    inside.mean,
    inside.std,
    outside.mean,
    outside.std,
    (inside.mean - outside.mean) / (outside.std + 0.02),
    inside.grad,
    outside.grad,
    dark / A,
    bright / A,
    0,
  ]);
  return d;
}

/** Per-component mean and scale of a set of descriptors (z-scores; a constant component gets scale 1). */
export interface DescriptorScaler {
  mean: Float64Array;
  scale: Float64Array;
}

/** The z-score statistics of `rows` (population standard deviation; 0 -> 1). */
export function fitScaler(rows: readonly ArrayLike<number>[]): DescriptorScaler {
  if (rows.length === 0) throw new InvalidArgumentError('fitScaler() needs at least one descriptor');
  const D = rows[0]!.length;
  const mean = new Float64Array(D), scale = new Float64Array(D);
  for (const r of rows) {
    if (r.length !== D) throw new InvalidArgumentError('fitScaler(): descriptors of different lengths');
    for (let d = 0; d < D; d++) mean[d]! += r[d]! / rows.length;
  }
  for (const r of rows) for (let d = 0; d < D; d++) scale[d]! += (r[d]! - mean[d]!) ** 2 / rows.length;
  for (let d = 0; d < D; d++) scale[d] = Math.sqrt(scale[d]!) > 1e-9 ? Math.sqrt(scale[d]!) : 1;
  return { mean, scale };
}

/** `row` standardised with `s`. */
export function standardise(row: ArrayLike<number>, s: DescriptorScaler): Float64Array {
  if (row.length !== s.mean.length) throw new InvalidArgumentError(`standardise(): a descriptor of ${row.length} values for a scaler of ${s.mean.length}`);
  return Float64Array.from({ length: row.length }, (_, d) => (row[d]! - s.mean[d]!) / s.scale[d]!);
}

/** Neighbours of the `descriptor` novelty score. */
export const DESCRIPTOR_NEIGHBOURS = 5;

/**
 * `descriptor` novelty of one standardised descriptor: the mean Euclidean distance to its
 * `neighbours` nearest rows of `bank` (the fit crops' standardised descriptors, `dim`
 * values per row).
 */
export function descriptorNovelty(z: ArrayLike<number>, bank: ArrayLike<number>, dim: number, neighbours = DESCRIPTOR_NEIGHBOURS): number {
  const rows = Math.floor(bank.length / dim);
  if (rows === 0 || z.length !== dim) throw new InvalidArgumentError('descriptorNovelty() needs a non-empty bank of descriptors of the same length');
  const k = Math.min(neighbours, rows);
  const best: number[] = [];
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (z[d]! - bank[r * dim + d]!) ** 2;
    if (best.length < k || s < best[best.length - 1]!) {
      let pos = best.length;
      while (pos > 0 && best[pos - 1]! > s) pos--;
      best.splice(pos, 0, s);
      if (best.length > k) best.pop();
    }
  }
  return best.reduce((a, s) => a + Math.sqrt(s), 0) / k;
}

/** What the feature K estimators work on (`kFeatures`, `--k-features`). */
export const K_FEATURES = ['backbone', 'descriptors', 'both'] as const;
/** `backbone`: the frozen [CLS] image features; `descriptors`: the standardised region descriptors; `both`: the two joined. */
export type KFeatures = (typeof K_FEATURES)[number];
/**
 * The default of `discover({kFeatures})`: descriptors lowered the error of every feature method
 * on whole datasets (bench/RESULTS.md, "K estimation on whole datasets").
 */
export const DEFAULT_K_FEATURES: KFeatures = 'descriptors';

/** A block of features: `n` rows of `dim` values, row-major. */
export interface FeatureBlock {
  data: ArrayLike<number>;
  dim: number;
}

/**
 * Blocks of features joined column-wise, each column z-scored with the statistics of the
 * `fit` rows, each block scaled by 1 / sqrt(its width) so that every block carries the same
 * total variance whatever its width; `other` rows (e.g. a labelled set) get the same
 * transform. Returns the joined rows and their width.
 */
export function joinStandardised(fit: readonly FeatureBlock[], n: number, other?: { blocks: readonly FeatureBlock[]; n: number }): { fit: Float64Array; other: Float64Array | null; dim: number } {
  if (fit.length === 0 || n < 1) throw new InvalidArgumentError('joinStandardised() needs at least one block and one row');
  const dim = fit.reduce((a, b) => a + b.dim, 0);
  const out = new Float64Array(n * dim);
  const m = other?.n ?? 0;
  const outOther = other ? new Float64Array(m * dim) : null;
  let offset = 0;
  fit.forEach((b, q) => {
    if (b.data.length !== n * b.dim) throw new InvalidArgumentError(`joinStandardised(): block ${q} holds ${b.data.length} values, expected ${n} x ${b.dim}`);
    const rows = Array.from({ length: n }, (_, i) => Array.prototype.slice.call(b.data, i * b.dim, (i + 1) * b.dim) as number[]);
    const s = fitScaler(rows);
    const w = 1 / Math.sqrt(b.dim);
    rows.forEach((r, i) => standardise(r, s).forEach((v, d) => (out[i * dim + offset + d] = v * w)));
    if (other && outOther) {
      const ob = other.blocks[q];
      if (!ob || ob.dim !== b.dim || ob.data.length !== m * b.dim) throw new InvalidArgumentError(`joinStandardised(): the other rows' block ${q} does not match`);
      for (let i = 0; i < m; i++) standardise(Array.prototype.slice.call(ob.data, i * b.dim, (i + 1) * b.dim) as number[], s).forEach((v, d) => (outOther[i * dim + offset + d] = v * w));
    }
    offset += b.dim;
  });
  return { fit: out, other: outOther, dim };
}

/** Largest number of fit crops whose descriptors a bundle records (a seeded subsample beyond it). */
export const MAX_DESCRIPTOR_BANK = 2000;

/** What the `descriptor` score needs: the z-score statistics and the bank (rounded to 1e-4, as recorded). */
export interface DescriptorModel {
  scaler: DescriptorScaler;
  bank: Float64Array;
}

/** The `descriptor` score's model from the fit crops' raw descriptors (at most `MAX_DESCRIPTOR_BANK` rows, chosen by `rand`). */
export function descriptorModel(fitDescriptors: readonly ArrayLike<number>[], rand: () => number): DescriptorModel {
  const scaler = fitScaler(fitDescriptors);
  let rows = fitDescriptors.map((_, i) => i);
  if (rows.length > MAX_DESCRIPTOR_BANK) rows = rows.map((i) => ({ i, r: rand() })).sort((a, b) => a.r - b.r).slice(0, MAX_DESCRIPTOR_BANK).map((o) => o.i).sort((a, b) => a - b);
  const D = scaler.mean.length;
  const bank = new Float64Array(rows.length * D);
  rows.forEach((i, r) => standardise(fitDescriptors[i]!, scaler).forEach((v, d) => (bank[r * D + d] = Math.round(v * 1e4) / 1e4)));
  return { scaler, bank };
}
