/**
 * A procedural defect generator: textured surfaces with defects of distinct
 * shape statistics, their ground-truth masks, and detector-like noisy anomaly
 * maps. It is the embedded default of the CLI (no download) and lets benches
 * scale to any number of images.
 * @module
 */
import { defaulted, int, resolveOptions, type SchemaFor } from '../core/options.js';
import { mulberry32 } from '../core/random.js';
import { Tensor } from '../core/tensor.js';

/** The defect types the generator draws by default (`types: 4`). `good` images have no defect. */
export const DEFECT_TYPES = ['scratch', 'spot', 'crack', 'stain'] as const;
/**
 * Every defect type the generator can draw, in order: `types: n` draws the first n. Each
 * differs from the others in shape and in how it changes the surface's brightness.
 */
export const ALL_DEFECT_TYPES = [...DEFECT_TYPES, 'hole', 'ring', 'fold', 'speckle'] as const;
/** A defect type, or `good`. */
export type SyntheticLabel = (typeof ALL_DEFECT_TYPES)[number] | 'good';

/** One generated sample. */
export interface SyntheticSample {
  /** `<label>/<index>` */
  name: string;
  label: SyntheticLabel;
  /** RGB uint8 [H, W, 3]. */
  image: Tensor<'uint8'>;
  /** Ground truth 0/255 uint8 [H, W]. */
  mask: Tensor<'uint8'>;
  /** Detector-like float32 anomaly map [mapSize, mapSize] (unnormalised). */
  map: Tensor<'float32'>;
}

/** The table of {@link SyntheticOptions}. @internal */
export const SYNTHETIC_OPTIONS = {
  perType: defaulted(int({ min: 0, max: 8192, default: 6, doc: 'Images per defect type.' })),
  types: defaulted(int({ min: 1, max: ALL_DEFECT_TYPES.length, default: DEFECT_TYPES.length, doc: 'Number of defect types (the first n of ALL_DEFECT_TYPES).' })),
  good: defaulted(int({ min: 0, max: 8192, default: 4, doc: 'Defect-free images.' })),
  size: defaulted(int({ min: 16, max: 8192, default: 256, doc: 'Image side in pixels.' })),
  mapSize: defaulted(int({ min: 8, max: 8192, default: 128, doc: 'Anomaly-map side.' })),
  // A 32-bit seed, signed or unsigned (mulberry32 takes it modulo 2^32).
  seed: defaulted(int({ min: -(2 ** 31), max: 2 ** 32 - 1, default: 1, doc: 'Seed of the deterministic generator.' })),
} satisfies SchemaFor<SyntheticOptions>;

/** Options of {@link generateSynthetic}. */
export interface SyntheticOptions {
  /** Images per defect type (default 6). */
  perType?: number;
  /**
   * Number of defect types, 1..8: the first n of {@link ALL_DEFECT_TYPES} (default 4, the
   * original four; with 4 the output is exactly what it was before the option existed).
   */
  types?: number;
  /** Defect-free images (default 4). */
  good?: number;
  /** Image side in pixels (default 256). */
  size?: number;
  /** Anomaly-map side, as detectors emit square maps (default 128). */
  mapSize?: number;
  /** Seed of the deterministic generator (default 1). */
  seed?: number;
}

/** How each defect changes the surface's brightness inside its mask (the first four as they always were). */
const BRIGHTNESS: Record<SyntheticLabel, (v: number) => number> = {
  scratch: (v) => v * 0.35,
  spot: (v) => v + 70,
  crack: (v) => v * 0.35,
  stain: (v) => v * 0.6,
  hole: (v) => v * 0.1,
  ring: (v) => v + 45,
  fold: (v) => v * 0.75,
  speckle: (v) => v + 100,
  good: (v) => v * 0.35,
};

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function paintDisc(mask: Uint8Array, size: number, cx: number, cy: number, r: number): void {
  const r2 = r * r;
  for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(size - 1, Math.ceil(cy + r)); y++)
    for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(size - 1, Math.ceil(cx + r)); x++)
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r2) mask[y * size + x] = 255;
}

function drawDefect(label: SyntheticLabel, mask: Uint8Array, size: number, rand: () => number): void {
  const margin = size * 0.15;
  const cx = margin + rand() * (size - 2 * margin);
  const cy = margin + rand() * (size - 2 * margin);
  switch (label) {
    case 'scratch': {
      // Long, straight and thin.
      const angle = rand() * Math.PI;
      const length = size * (0.3 + 0.25 * rand());
      const width = 1.5 + rand();
      for (let t = -length / 2; t <= length / 2; t += 0.5)
        paintDisc(mask, size, cx + Math.cos(angle) * t, cy + Math.sin(angle) * t, width);
      break;
    }
    case 'spot': {
      // Small, round, sometimes a pair.
      const n = 1 + Math.floor(rand() * 2);
      for (let i = 0; i < n; i++) paintDisc(mask, size, cx + i * size * 0.12, cy, size * (0.025 + 0.02 * rand()));
      break;
    }
    case 'crack': {
      // A jagged random walk.
      let x = cx, y = cy;
      let angle = rand() * 2 * Math.PI;
      for (let step = 0; step < size * 0.5; step++) {
        angle += (rand() - 0.5) * 0.9;
        x = Math.min(size - 2, Math.max(1, x + Math.cos(angle)));
        y = Math.min(size - 2, Math.max(1, y + Math.sin(angle)));
        paintDisc(mask, size, x, y, 1.2);
      }
      break;
    }
    case 'stain': {
      // Large, soft-edged ellipse.
      const rx = size * (0.1 + 0.07 * rand()), ry = size * (0.07 + 0.05 * rand());
      for (let yy = 0; yy < size; yy++)
        for (let xx = 0; xx < size; xx++) if (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1) mask[yy * size + xx] = 255;
      break;
    }
    case 'hole': {
      // A small, very dark round pit.
      paintDisc(mask, size, cx, cy, size * (0.04 + 0.02 * rand()));
      break;
    }
    case 'ring': {
      // A thin bright annulus.
      const r = size * (0.07 + 0.04 * rand()), w = 1.5 + rand();
      for (let yy = Math.max(0, Math.floor(cy - r - w)); yy <= Math.min(size - 1, Math.ceil(cy + r + w)); yy++)
        for (let xx = Math.max(0, Math.floor(cx - r - w)); xx <= Math.min(size - 1, Math.ceil(cx + r + w)); xx++)
          if (Math.abs(Math.hypot(xx - cx, yy - cy) - r) <= w) mask[yy * size + xx] = 255;
      break;
    }
    case 'fold': {
      // Three or four short parallel lines.
      const angle = rand() * Math.PI, lines = 3 + Math.floor(rand() * 2);
      const length = size * (0.15 + 0.08 * rand()), gap = size * 0.035;
      const nx = -Math.sin(angle), ny = Math.cos(angle);
      for (let l = 0; l < lines; l++) {
        const ox = cx + nx * gap * (l - (lines - 1) / 2), oy = cy + ny * gap * (l - (lines - 1) / 2);
        for (let t = -length / 2; t <= length / 2; t += 0.5) paintDisc(mask, size, ox + Math.cos(angle) * t, oy + Math.sin(angle) * t, 1.2);
      }
      break;
    }
    case 'speckle': {
      // A cloud of tiny bright dots.
      const dots = 14 + Math.floor(rand() * 8), spread = size * 0.09;
      for (let d = 0; d < dots; d++) paintDisc(mask, size, cx + (rand() - 0.5) * 2 * spread, cy + (rand() - 0.5) * 2 * spread, 1.5 + rand());
      break;
    }
    case 'good':
      break;
  }
}

function boxBlur(src: Float32Array, size: number, radius: number): Float32Array {
  const tmp = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  const w = 2 * radius + 1;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += src[y * size + Math.min(size - 1, Math.max(0, x + k))]!;
      tmp[y * size + x] = s / w;
    }
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += tmp[Math.min(size - 1, Math.max(0, y + k)) * size + x]!;
      out[y * size + x] = s / w;
    }
  return out;
}

/** Generates a labelled synthetic set, deterministically from `seed`. */
export function generateSynthetic(options: SyntheticOptions = {}): SyntheticSample[] {
  const { perType, types, good, size, mapSize, seed } = resolveOptions(SYNTHETIC_OPTIONS, options);
  const rand = mulberry32(seed);
  const labels: SyntheticLabel[] = [];
  for (const t of ALL_DEFECT_TYPES.slice(0, types)) for (let i = 0; i < perType; i++) labels.push(t);
  for (let i = 0; i < good; i++) labels.push('good');
  return labels.map((label, index) => {
    const mask = new Uint8Array(size * size);
    drawDefect(label, mask, size, rand);
    // Surface: brushed-metal-like texture, grey with a slight tint.
    const image = new Uint8Array(size * size * 3);
    const phase = rand() * 10, freq = 0.05 + rand() * 0.1, base = 110 + rand() * 40;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const p = y * size + x;
        let v = base + 12 * Math.sin(freq * x + phase + 0.3 * Math.sin(0.07 * y)) + 6 * gaussian(rand);
        if (mask[p]) v = BRIGHTNESS[label](v);
        const c = Math.max(0, Math.min(255, Math.round(v)));
        image[3 * p] = c;
        image[3 * p + 1] = Math.max(0, Math.min(255, c + 3));
        image[3 * p + 2] = Math.max(0, Math.min(255, c + 8));
      }
    // Map: the mask at detector resolution, blurred, with noise and a faint false positive.
    const gt = new Float32Array(mapSize * mapSize);
    for (let y = 0; y < mapSize; y++)
      for (let x = 0; x < mapSize; x++)
        gt[y * mapSize + x] = mask[Math.floor((y * size) / mapSize) * size + Math.floor((x * size) / mapSize)]! / 255;
    // Detectors score patches, so thin defects show up as blobs several pixels wide.
    const blurred = boxBlur(boxBlur(gt, mapSize, Math.max(2, Math.round(mapSize / 40))), mapSize, Math.max(1, Math.round(mapSize / 64)));
    const map = new Float32Array(mapSize * mapSize);
    const fx = rand() * mapSize, fy = rand() * mapSize, fa = 0.15 * rand();
    for (let y = 0; y < mapSize; y++)
      for (let x = 0; x < mapSize; x++) {
        const p = y * mapSize + x;
        const ghost = fa * Math.exp(-((x - fx) ** 2 + (y - fy) ** 2) / (2 * (mapSize / 20) ** 2));
        map[p] = Math.max(0, Math.min(1, 3 * blurred[p]!) + ghost + 0.04 * Math.abs(gaussian(rand)));
      }
    return {
      name: `${label}/${String(index).padStart(4, '0')}`,
      label,
      image: new Tensor('uint8', [size, size, 3], image),
      mask: new Tensor('uint8', [size, size], mask),
      map: new Tensor('float32', [mapSize, mapSize], map),
    };
  });
}
