/**
 * The library's one PNG encoder: grayscale or RGB, 8 or 16 bits per sample,
 * adaptive per-row filtering, `node:zlib` deflate. Plus thumbnails of uint8
 * tensors as `data:` URLs for self-contained HTML reports.
 *
 * ```ts
 * import { encodePng, pngDataUrl } from 'anomalyncd';
 * const png = encodePng(2, 1, [0, 255]);              // 2×1 gray, 8 bit
 * const url = pngDataUrl(crop.image, 96);            // 'data:image/png;base64,…'
 * ```
 * @module
 */
import { crc32, deflateSync } from 'node:zlib';
import { InvalidArgumentError, shown } from '../core/errors.js';
import { isTensorLike, type Tensor } from '../core/tensor.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG's largest dimension (2^31 - 1). */
const MAX_SIDE = 0x7fffffff;

/** One PNG chunk: length, type, data and the CRC of type + data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** Paeth predictor (PNG spec §9.4). */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Residual of byte `i` of `row` under filter type `f` (None, Sub, Up, Average,
 * Paeth); `prev` is the row above (zeros for the first row).
 */
function residual(f: number, row: Uint8Array, prev: Uint8Array, i: number, bpp: number): number {
  const a = i >= bpp ? row[i - bpp]! : 0;
  const b = prev[i]!;
  const c = i >= bpp ? prev[i - bpp]! : 0;
  const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >>> 1 : paeth(a, b, c);
  return (row[i]! - pred) & 0xff;
}

/**
 * Filters every scanline with the filter type (None, Sub, Up, Average, Paeth)
 * that minimises the sum of absolute signed residuals, libpng's heuristic.
 */
function filterRows(raw: Uint8Array, stride: number, height: number, bpp: number): Buffer {
  const out = Buffer.alloc((stride + 1) * height);
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? raw.subarray((y - 1) * stride, y * stride) : zero;
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < 5; f++) {
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const r = residual(f, row, prev, i, bpp);
        cost += r < 128 ? r : 256 - r;
        if (cost >= bestCost) break;
      }
      if (cost < bestCost) {
        bestCost = cost;
        best = f;
      }
    }
    // Write the winner's residuals.
    const base = y * (stride + 1);
    out[base] = best;
    const dst = out.subarray(base + 1, base + 1 + stride);
    for (let i = 0; i < stride; i++) dst[i] = residual(best, row, prev, i, bpp);
  }
  return out;
}

/**
 * Encodes a PNG image.
 *
 * @param width Image width in pixels (≥ 1).
 * @param height Image height in pixels (≥ 1).
 * @param pixels Row-major samples, `width * height * channels` of them
 *   (channels: 1 for gray, 3 for RGB), each an integer in `0..255` (8 bit) or
 *   `0..65535` (16 bit).
 * @param colorType `0` grayscale or `2` RGB (default `0`).
 * @param bitDepth `8` or `16` bits per sample (default `8`).
 * @returns The PNG file's bytes.
 * @throws {@link InvalidArgumentError} on a bad size, sample count, sample value, colour type or bit depth.
 */
export function encodePng(
  width: number,
  height: number,
  pixels: ArrayLike<number> | Uint8Array,
  colorType: 0 | 2 = 0,
  bitDepth: 8 | 16 = 8,
): Buffer {
  if (!Number.isInteger(width) || width < 1 || width > MAX_SIDE || !Number.isInteger(height) || height < 1 || height > MAX_SIDE)
    throw new InvalidArgumentError(`PNG size ${width}×${height} must be positive integers`);
  if (colorType !== 0 && colorType !== 2) throw new InvalidArgumentError(`PNG colorType must be 0 (gray) or 2 (RGB), got ${shown(colorType)}`);
  if (bitDepth !== 8 && bitDepth !== 16) throw new InvalidArgumentError(`PNG bitDepth must be 8 or 16, got ${shown(bitDepth)}`);
  const channels = colorType === 2 ? 3 : 1;
  const samples = width * height * channels;
  if (pixels == null || typeof pixels.length !== 'number' || pixels.length !== samples)
    throw new InvalidArgumentError(`PNG of ${width}×${height}×${channels} needs ${samples} samples, got ${pixels?.length}`);
  const bytesPerSample = bitDepth / 8;
  const stride = width * channels * bytesPerSample;
  let raw: Uint8Array;
  if (bitDepth === 8 && pixels instanceof Uint8Array) raw = pixels;
  else {
    const max = bitDepth === 8 ? 255 : 65535;
    raw = new Uint8Array(samples * bytesPerSample);
    for (let i = 0; i < samples; i++) {
      const v = pixels[i]!;
      if (!Number.isInteger(v) || v < 0 || v > max)
        throw new InvalidArgumentError(`PNG sample ${i} is ${shown(v)}; ${bitDepth}-bit samples must be integers in 0..${max}`);
      if (bitDepth === 8) raw[i] = v;
      else {
        raw[2 * i] = v >>> 8;
        raw[2 * i + 1] = v & 0xff;
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  // compression 0, filter method 0, no interlace
  return Buffer.concat([
    SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(filterRows(raw, stride, height, channels * bytesPerSample))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function imageGeometry(tensor: Tensor<'uint8'>): { h: number; w: number; c: 1 | 3 } {
  if (!isTensorLike(tensor) || tensor.dtype !== 'uint8' || !(tensor.data instanceof Uint8Array))
    throw new InvalidArgumentError('Expected a uint8 Tensor of shape [h, w], [h, w, 1] or [h, w, 3]');
  const s = tensor.shape;
  const c = s.length === 2 ? 1 : s[2];
  if ((s.length !== 2 && s.length !== 3) || (c !== 1 && c !== 3))
    throw new InvalidArgumentError(`Expected an image tensor of shape [h, w], [h, w, 1] or [h, w, 3], got [${s.join(', ')}]`);
  const h = s[0]!, w = s[1]!;
  if (h < 1 || w < 1) throw new InvalidArgumentError(`Cannot encode an empty image [${s.join(', ')}]`);
  if (tensor.data.length !== h * w * c) throw new InvalidArgumentError(`Image tensor [${s.join(', ')}] has ${tensor.data.length} elements`);
  return { h, w, c };
}

/**
 * Box-filters (area-averages) an interleaved uint8 image down to `oh × ow`.
 * Every source pixel lands in exactly one output pixel.
 */
function boxDownsample(src: Uint8Array, h: number, w: number, c: number, oh: number, ow: number): Uint8Array {
  if (oh === h && ow === w) return src;
  const out = new Uint8Array(oh * ow * c);
  const acc = new Float64Array(c);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = Math.floor((oy * h) / oh), y1 = Math.max(y0 + 1, Math.floor(((oy + 1) * h) / oh));
    for (let ox = 0; ox < ow; ox++) {
      const x0 = Math.floor((ox * w) / ow), x1 = Math.max(x0 + 1, Math.floor(((ox + 1) * w) / ow));
      acc.fill(0);
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) for (let k = 0; k < c; k++) acc[k]! += src[(y * w + x) * c + k]!;
      const n = (y1 - y0) * (x1 - x0);
      for (let k = 0; k < c; k++) out[(oy * ow + ox) * c + k] = Math.round(acc[k]! / n);
    }
  }
  return out;
}

/**
 * Encodes a uint8 image tensor (`[h, w]`, `[h, w, 1]` gray or `[h, w, 3]`
 * RGB) as an 8-bit PNG, box-downsampled first so that its longer side is at
 * most `maxSide` pixels (aspect ratio kept; never upsampled).
 */
export function encodeTensorPng(tensor: Tensor<'uint8'>, maxSide = Infinity): Buffer {
  const { h, w, c } = imageGeometry(tensor);
  if (!(maxSide >= 1)) throw new InvalidArgumentError(`maxSide must be ≥ 1, got ${shown(maxSide)}`);
  const scale = Math.min(1, Math.floor(maxSide) / Math.max(h, w));
  const oh = Math.max(1, Math.round(h * scale)), ow = Math.max(1, Math.round(w * scale));
  const pixels = boxDownsample(tensor.data, h, w, c, oh, ow);
  return encodePng(ow, oh, pixels, c === 3 ? 2 : 0, 8);
}

/**
 * A `data:image/png;base64,…` URL of a uint8 image tensor, box-downsampled
 * so that its longer side is at most `maxSide` pixels (default 128), for
 * embedding in self-contained HTML.
 */
export function pngDataUrl(tensor: Tensor<'uint8'>, maxSide = 128): string {
  return `data:image/png;base64,${encodeTensorPng(tensor, maxSide).toString('base64')}`;
}
