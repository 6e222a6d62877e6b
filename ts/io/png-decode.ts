/**
 * A small PNG decoder to 8-bit grayscale, in TypeScript (no native code), for
 * reading ground-truth masks and other gray images when their pixels are
 * needed in JavaScript (e.g. to threshold anti-aliased masks).
 *
 * The result equals `cv2.imread(path, cv2.IMREAD_GRAYSCALE)` (OpenCV 4.6 on
 * libpng 1.6): colour and palette pixels are converted with libpng's
 * `png_set_rgb_to_gray(0.299, 0.587)` fixed-point weights (9797, 19234, 3737
 * of 32768, truncated), in linear light when the file declares a significant
 * gamma (`sRGB` or `gAMA` chunk) as libpng does; alpha is dropped (not
 * composited); 1/2/4-bit gray is scaled to 0..255.
 *
 * Supported: non-interlaced PNGs with bit depth <= 8 of every colour type
 * (gray, gray+alpha, RGB, RGBA, palette) and all five filter types.
 * Interlaced (Adam7) and 16-bit files are refused with {@link BadInputError}.
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { crc32, inflateSync } from 'node:zlib';
import { BadInputError } from '../core/errors.js';
import { readFileBytes } from './files.js';
import { Tensor } from '../core/tensor.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Channels per colour type. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Allowed bit depths per colour type (PNG spec, table 11.1). */
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const COLOR_NAMES: Record<number, string> = { 0: 'gray', 2: 'RGB', 3: 'palette', 4: 'gray+alpha', 6: 'RGBA' };

/** Header fields of a PNG (IHDR). */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA. */
  colorType: number;
  interlaced: boolean;
}

/** Does `bytes` start with the PNG signature? */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).equals(SIGNATURE);
}

/** Parses the IHDR chunk (needs the first 33 bytes). */
export function parsePngHeader(bytes: Uint8Array, name = 'buffer'): PngHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isPng(buf)) throw new BadInputError(`${name} is not a PNG file (bad signature)`);
  if (buf.length < 33 || buf.toString('latin1', 12, 16) !== 'IHDR' || buf.readUInt32BE(8) !== 13)
    throw new BadInputError(`${name} is a malformed PNG (no IHDR chunk first)`);
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const bitDepth = buf[24]!;
  const colorType = buf[25]!;
  const interlace = buf[28]!;
  if (width === 0 || height === 0) throw new BadInputError(`${name}: PNG size ${width}x${height} is empty`);
  if (!(colorType in CHANNELS) || !DEPTHS[colorType]!.includes(bitDepth))
    throw new BadInputError(`${name}: invalid PNG colour type ${colorType} with bit depth ${bitDepth}`);
  if (buf[26] !== 0 || buf[27] !== 0 || interlace > 1)
    throw new BadInputError(`${name}: invalid PNG compression/filter/interlace method (${buf[26]}/${buf[27]}/${interlace})`);
  return { width, height, bitDepth, colorType, interlaced: interlace === 1 };
}

/** libpng's png_reciprocal: round(1e10 / a) in 1e5 fixed point. */
const reciprocal = (a: number) => Math.floor(1e10 / a + 0.5);
/** libpng's png_build_8bit_table with floating arithmetic. */
function gammaTable(gamma: number): Uint8Array {
  const t = new Uint8Array(256);
  const significant = gamma < 95000 || gamma > 105000;
  for (let i = 0; i < 256; i++) t[i] = significant ? Math.floor(255 * Math.pow(i / 255, gamma * 1e-5) + 0.5) : i;
  return t;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes PNG bytes to an 8-bit grayscale Tensor [H, W] (see the module notes
 * for the conversion). `name` appears in error messages.
 */
export function decodeGrayPng(bytes: Uint8Array, name = 'buffer'): Tensor<'uint8'> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = parsePngHeader(buf, name);
  const { width, height, bitDepth, colorType } = header;
  const label = `${COLOR_NAMES[colorType]} ${bitDepth}-bit`;
  if (header.interlaced) throw new BadInputError(`${name}: interlaced (Adam7) PNGs are not supported (${label}); re-save it non-interlaced`);
  if (bitDepth === 16) throw new BadInputError(`${name}: 16-bit PNGs are not supported (${label}); save the image with 8-bit samples`);

  const idat: Buffer[] = [];
  let palette: Buffer | undefined;
  let gamma = 0; // libpng colorspace.gamma, 0 = unset
  let srgb = false;
  let ended = false;
  let pos = 8;
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + len > buf.length) break;
    const data = buf.subarray(pos + 8, pos + 8 + len);
    const critical = (buf[pos + 4]! & 0x20) === 0;
    if (critical && (crc32(buf.subarray(pos + 4, pos + 8 + len)) >>> 0) !== buf.readUInt32BE(pos + 8 + len))
      throw new BadInputError(`${name}: PNG chunk ${type} has a bad CRC (corrupt file)`);
    if (type === 'IDAT') idat.push(data);
    else if (type === 'PLTE') palette = data;
    else if (type === 'gAMA' && len === 4 && idat.length === 0) gamma = data.readUInt32BE(0);
    else if (type === 'sRGB' && idat.length === 0) srgb = true;
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    pos += 12 + len;
  }
  if (!ended) throw new BadInputError(`${name} is a truncated PNG (no IEND chunk)`);
  if (idat.length === 0) throw new BadInputError(`${name}: PNG has no image data (IDAT)`);
  if (colorType === 3 && (!palette || palette.length === 0 || palette.length % 3 !== 0))
    throw new BadInputError(`${name}: palette PNG without a valid PLTE chunk`);
  if (srgb) gamma = 45455;

  const channels = CHANNELS[colorType]!;
  const bitsPerPixel = channels * bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  // Inflate no more than the image needs (plus slack for trailing bytes libpng tolerates): a
  // small IDAT can inflate to gigabytes (a 0.5 MB 1x1 PNG once took 19 s and 600 MB here).
  const needed = (stride + 1) * height;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: Math.min(needed + 65536, bufferConstants.MAX_LENGTH) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new BadInputError(`${name}: PNG image data inflates to more than the ${needed} bytes a ${width}x${height} ${label} image holds`, { cause: e });
    throw new BadInputError(`${name}: PNG image data cannot be inflated: ${(e as Error).message}`, { cause: e });
  }
  if (raw.length < (stride + 1) * height)
    throw new BadInputError(`${name}: PNG image data is too short (${raw.length} bytes for ${width}x${height} ${label})`);

  // Unfilter in place, row by row (each row: filter byte + stride bytes).
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const up = dst - stride;
    for (let i = 0; i < stride; i++) {
      const x = raw[src + i]!;
      const a = i >= bpp ? rows[dst + i - bpp]! : 0;
      const b = y > 0 ? rows[up + i]! : 0;
      let v: number;
      switch (filter) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: v = x + paeth(a, b, i >= bpp && y > 0 ? rows[up + i - bpp]! : 0); break;
        default: throw new BadInputError(`${name}: PNG row ${y} has an invalid filter type ${filter}`);
      }
      rows[dst + i] = v & 0xff;
    }
  }

  const out = new Uint8Array(width * height);
  // Sample `x` of row `y` for sub-byte depths (gray or palette index).
  const sub = (y: number, x: number): number => {
    const bit = x * bitDepth;
    const byte = rows[y * stride + (bit >> 3)]!;
    return (byte >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
  };
  if (colorType === 0 || colorType === 4) {
    if (bitDepth === 8) for (let i = 0; i < width * height; i++) out[i] = rows[i * channels]!;
    else {
      const scale = 255 / ((1 << bitDepth) - 1);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = sub(y, x) * scale;
    }
    return new Tensor('uint8', [height, width], out);
  }

  // Colour: libpng rgb_to_gray with OpenCV's coefficients (0.299, 0.587).
  const rc = 9797;
  const gc = 19234;
  const bc = 32768 - rc - gc;
  const useGamma = gamma !== 0 && (gamma < 95000 || gamma > 105000 || reciprocal(gamma) < 95000 || reciprocal(gamma) > 105000);
  const toLinear = useGamma ? gammaTable(reciprocal(gamma)) : undefined;
  const fromLinear = useGamma ? gammaTable(reciprocal(reciprocal(gamma))) : undefined;
  const gray = (r: number, g: number, b: number): number => {
    if (r === g && r === b) return r;
    if (toLinear && fromLinear) return fromLinear[(rc * toLinear[r]! + gc * toLinear[g]! + bc * toLinear[b]! + 16384) >> 15]!;
    return (rc * r + gc * g + bc * b) >> 15;
  };
  if (colorType === 3) {
    const pal = palette!;
    const entries = pal.length / 3;
    const lut = new Uint8Array(256);
    for (let i = 0; i < 256; i++) lut[i] = i < entries ? gray(pal[3 * i]!, pal[3 * i + 1]!, pal[3 * i + 2]!) : 0;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const index = bitDepth === 8 ? rows[y * stride + x]! : sub(y, x);
        if (index >= entries) throw new BadInputError(`${name}: palette index ${index} is outside the ${entries}-entry palette`);
        out[y * width + x] = lut[index]!;
      }
  } else {
    for (let i = 0, p = 0; i < width * height; i++, p += channels) out[i] = gray(rows[p]!, rows[p + 1]!, rows[p + 2]!);
  }
  return new Tensor('uint8', [height, width], out);
}

/** Reads a PNG file as an 8-bit grayscale Tensor [H, W] (equal to OpenCV's IMREAD_GRAYSCALE; see the module notes). */
export async function readGrayPng(path: string): Promise<Tensor<'uint8'>> {
  const bytes = await readFileBytes(path);
  return decodeGrayPng(bytes, `'${path}'`);
}
