// Detector-like anomaly maps built from the real MTD dataset's ground-truth
// masks, shared by the benches (mebin.bench.ts, startup.bench.ts): the same
// seeds give the same maps in every script.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from 'anomalyncd';
import { decodeGrayPng } from '../ts/io/png-decode.js';
import { mulberry32 } from '../ts/core/random.js';

const DEFECT_CLASSES = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'] as const;


/** Bilinear resize (half-pixel centres) of a 0/255 mask to a float S x S map in 0..1. */
function resizeMask(mask: Tensor<'uint8'>, S: number): Float32Array {
  const [H, W] = mask.shape as [number, number];
  const data = mask.data;
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const fy = Math.min(Math.max(((y + 0.5) * H) / S - 0.5, 0), H - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, H - 1);
    const wy = fy - y0;
    for (let x = 0; x < S; x++) {
      const fx = Math.min(Math.max(((x + 0.5) * W) / S - 0.5, 0), W - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, W - 1);
      const wx = fx - x0;
      const top = data[y0 * W + x0]! * (1 - wx) + data[y0 * W + x1]! * wx;
      const bot = data[y1 * W + x0]! * (1 - wx) + data[y1 * W + x1]! * wx;
      out[y * S + x] = (top * (1 - wy) + bot * wy) / 255;
    }
  }
  return out;
}

/** One separable box-blur pass of radius r (clamped border), in place. */
function boxBlur(img: Float32Array, S: number, r: number, tmp: Float32Array): void {
  const norm = 1 / (2 * r + 1);
  for (let pass = 0; pass < 2; pass++) {
    // pass 0: rows of img -> columns of tmp (transposed); pass 1: back again.
    const src = pass === 0 ? img : tmp;
    const dst = pass === 0 ? tmp : img;
    for (let y = 0; y < S; y++) {
      const row = y * S;
      let sum = 0;
      for (let k = -r; k <= r; k++) sum += src[row + Math.min(Math.max(k, 0), S - 1)]!;
      for (let x = 0; x < S; x++) {
        dst[x * S + y] = sum * norm;
        sum += src[row + Math.min(x + r + 1, S - 1)]! - src[row + Math.max(x - r, 0)]!;
      }
    }
  }
}

/** A detector-like float map from a GT mask (or none for a defect-free image). */
export function detectorMap(mask: Tensor<'uint8'> | undefined, S: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const map = mask ? resizeMask(mask, S) : new Float32Array(S * S);
  const strength = 0.55 + 0.45 * rand(); // the detector's confidence for this image
  for (let i = 0; i < map.length; i++) map[i]! *= strength;
  // A weak false-positive blob (Gaussian) somewhere.
  const cx = S * (0.15 + 0.7 * rand());
  const cy = S * (0.15 + 0.7 * rand());
  const sigma = S * (0.02 + 0.04 * rand());
  const amp = 0.15 + 0.2 * rand();
  const k = -1 / (2 * sigma * sigma);
  const r = Math.ceil(3 * sigma);
  for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(S, Math.ceil(cy + r)); y++)
    for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(S, Math.ceil(cx + r)); x++)
      map[y * S + x]! += amp * Math.exp(((x - cx) ** 2 + (y - cy) ** 2) * k);
  // Background level and coarse noise, smoothed by the blur into a patchy texture.
  const base = 0.05 + 0.1 * rand();
  for (let i = 0; i < map.length; i++) map[i]! += base + 0.35 * rand();
  const tmp = new Float32Array(S * S);
  const radius = Math.max(1, Math.round(S / 128)); // 2 px at 256², 8 px at 1024²
  for (let p = 0; p < 3; p++) boxBlur(map, S, radius, tmp);
  // Fine pixel noise after the blur (erosion should ignore it).
  for (let i = 0; i < map.length; i++) map[i]! += 0.02 * rand();
  return map;
}

/** The export recipe of docs/METHOD.md §1.4: one global min-max over all maps of the set, x255, truncation. */
export function exportUint8(maps: Float32Array[], S: number): Tensor<'uint8'>[] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of maps)
    for (let i = 0; i < m.length; i++) {
      const v = m[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  const scale = 255 / (hi - lo);
  return maps.map((m) => {
    const u = new Uint8Array(m.length);
    for (let i = 0; i < m.length; i++) u[i] = Math.min(255, Math.trunc((m[i]! - lo) * scale));
    return new Tensor('uint8', [S, S], u);
  });
}

/** The 256² maps of the MEBin bench for `samples` (seeds 1000 + i, one export over the set). */
export function benchMaps(samples: Sample[], S: number): Tensor<'uint8'>[] {
  return exportUint8(samples.map((s, i) => detectorMap(s.mask, S, 1000 + i)), S);
}

export interface Sample {
  cls: string;
  stem: string;
  image: string;
  mask: Tensor<'uint8'> | undefined;
}

function pick<T>(items: T[], n: number): T[] {
  if (n >= items.length) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

/**
 * nDefect defect images spread evenly over the five defect classes and nFree
 * defect-free ones, interleaved so that any prefix mixes the classes.
 */
export function selectSamples(MTD: string, N_DEFECT: number, N_FREE: number): Sample[] {
  const byClass = (cls: string): string[] =>
    readdirSync(join(MTD, cls, 'Imgs'))
      .filter((f) => f.endsWith('.jpg'))
      .map((f) => f.slice(0, -4))
      .sort();
  const perClass = DEFECT_CLASSES.map((cls, i) => ({ cls, n: Math.floor(N_DEFECT / DEFECT_CLASSES.length) + (i < N_DEFECT % DEFECT_CLASSES.length ? 1 : 0) }));
  const picked = perClass.map(({ cls, n }) => pick(byClass(cls), n).map((stem) => ({ cls, stem })));
  // Interleave the classes so that any prefix of the selection mixes them.
  const defects: { cls: string; stem: string }[] = [];
  for (let i = 0; defects.length < N_DEFECT; i++) for (const list of picked) {
    const item = list[i];
    if (item) defects.push(item);
  }
  const free = pick(byClass('MT_Free'), N_FREE).map((stem) => ({ cls: 'MT_Free', stem }));
  // Spread the defect-free images through the list too (one every few defects).
  const all: { cls: string; stem: string }[] = [];
  const every = Math.max(1, Math.floor(N_DEFECT / Math.max(1, N_FREE)));
  let f = 0;
  defects.forEach((d, i) => {
    all.push(d);
    if ((i + 1) % every === 0 && f < free.length) all.push(free[f++]!);
  });
  while (f < free.length) all.push(free[f++]!);
  return all.map(({ cls, stem }) => {
    const png = join(MTD, cls, 'Imgs', `${stem}.png`);
    return { cls, stem, image: join(MTD, cls, 'Imgs', `${stem}.jpg`), mask: cls === 'MT_Free' ? undefined : decodeGrayPng(readFileSync(png), png) };
  });
}

