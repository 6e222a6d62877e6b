// A seeded mutation fuzzer for the parsers written in TypeScript (issue 10 item 2):
// `.npy` (parseNpy), PNG decoding and headers (decodeGrayPng, parsePngHeader,
// readImageSize with PNG eXIf / JPEG SOF+Exif), TIFF map headers, the CSV
// manifest and dataset folders (loadDataset: manifest, MVTec AD, MTD).
// Seeds are generated here (valid files of each kind, small). Mutations: bit
// flips, interesting bytes and 32-bit words, inserts, deletes, truncation,
// splices with another seed; PNG inputs get their CRCs fixed half of the time
// so the mutation reaches the chunk parsers. An input whose outcome (the error
// message with numbers blanked, or 'ok') is new joins the corpus: a cheap
// stand-in for coverage feedback. Every outcome must be a result or an
// AnomalyNCDError with a code; anything else is a failure, kept with its input.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { AnomalyNCDError } from '../../ts/core/errors.js';
import { mulberry32 } from '../../ts/core/random.js';
import { Tensor } from '../../ts/core/tensor.js';
import { loadDataset } from '../../ts/io/datasets.js';
import { readImageSize } from '../../ts/io/datasets.js';
import { formatNpy, parseNpy } from '../../ts/io/npy.js';
import { decodeGrayPng, parsePngHeader } from '../../ts/io/png-decode.js';
import { encodePng, pngChunk } from '../../ts/io/png.js';

type Rng = () => number;
const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// ---------------------------------------------------------------------------
// Seeds

export function npySeeds(): Buffer[] {
  const out: Buffer[] = [];
  out.push(formatNpy(new Tensor('float32', [3, 4], new Float32Array(12).map((_, i) => i / 3))));
  out.push(formatNpy(new Tensor('float64', [2, 2, 2], new Float64Array(8).map((_, i) => -i))));
  out.push(formatNpy(new Tensor('uint8', [5], new Uint8Array([1, 2, 3, 4, 5]))));
  out.push(formatNpy(new Tensor('int32', [2, 3], new Int32Array([1, -2, 3, -4, 5, -6]))));
  out.push(formatNpy(new Tensor('int64', [2], new BigInt64Array([1n, -1n]))));
  out.push(formatNpy(new Tensor('float32', [0, 3])));
  out.push(formatNpy(new Tensor('uint8', [1, 1], new Uint8Array([9]))));
  // Version 2.0 header.
  const h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".padEnd(116, ' ') + '\n';
  const head = Buffer.alloc(12);
  SIG.copy(head, 0, 0, 0);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]).copy(head, 0);
  head.writeUInt32LE(h.length, 8);
  out.push(Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(new Float32Array([1.5, 2.5]).buffer)]));
  return out;
}

function png(ihdr: { w: number; h: number; depth: number; color: number }, raw: Buffer, extra: Buffer[] = []): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(ihdr.w, 0);
  d.writeUInt32BE(ihdr.h, 4);
  d[8] = ihdr.depth;
  d[9] = ihdr.color;
  return Buffer.concat([SIG, pngChunk('IHDR', d), ...extra, pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Rows of `stride` bytes with filter byte `f` cycling 0..4. */
function rows(h: number, stride: number, fill: (y: number, i: number) => number): Buffer {
  const b = Buffer.alloc(h * (stride + 1));
  for (let y = 0; y < h; y++) {
    b[y * (stride + 1)] = y % 5;
    for (let i = 0; i < stride; i++) b[y * (stride + 1) + 1 + i] = fill(y, i) & 0xff;
  }
  return b;
}

function exifTiff(orientation: number): Buffer {
  const t = Buffer.alloc(26);
  t.write('MM', 0, 'latin1');
  t.writeUInt16BE(42, 2);
  t.writeUInt32BE(8, 4);
  t.writeUInt16BE(1, 8);
  t.writeUInt16BE(0x0112, 10);
  t.writeUInt16BE(3, 12);
  t.writeUInt32BE(1, 14);
  t.writeUInt16BE(orientation, 18);
  return t;
}

export function pngSeeds(): Buffer[] {
  const gamma = Buffer.alloc(4);
  gamma.writeUInt32BE(45455);
  return [
    encodePng(5, 3, Array.from({ length: 15 }, (_, i) => i * 17), 0, 8),
    encodePng(4, 4, Array.from({ length: 48 }, (_, i) => (i * 29) % 256), 2, 8),
    encodePng(3, 2, Array.from({ length: 6 }, (_, i) => i * 9000), 0, 16),
    png({ w: 7, h: 3, depth: 1, color: 0 }, rows(3, 1, (y, i) => 0xa5 ^ y ^ i)),
    png({ w: 5, h: 4, depth: 4, color: 0 }, rows(4, 3, (y, i) => y * 40 + i)),
    png({ w: 6, h: 2, depth: 2, color: 3 }, rows(2, 2, (y, i) => y + i * 3), [pngChunk('PLTE', Buffer.from([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]))]),
    png({ w: 3, h: 3, depth: 8, color: 4 }, rows(3, 6, (y, i) => y * 50 + i)),
    png({ w: 3, h: 2, depth: 8, color: 6 }, rows(2, 12, (y, i) => y * 70 + i * 11), [pngChunk('gAMA', gamma)]),
    png({ w: 4, h: 2, depth: 8, color: 2 }, rows(2, 12, (y, i) => y * 3 + i * 21), [pngChunk('sRGB', Buffer.from([0])), pngChunk('eXIf', exifTiff(6))]),
  ];
}

export function jpegSeeds(): Buffer[] {
  const app1Body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), exifTiff(8)]);
  const app1 = Buffer.alloc(4);
  app1[0] = 0xff;
  app1[1] = 0xe1;
  app1.writeUInt16BE(app1Body.length + 2, 2);
  const sof = Buffer.from([0xff, 0xc0, 0, 11, 8, 0, 20, 0, 30, 1, 1, 0x11, 0]);
  return [
    Buffer.concat([Buffer.from([0xff, 0xd8]), app1, app1Body, sof, Buffer.from([0xff, 0xda, 0, 2, 0xff, 0xd9])]),
    Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0]), Buffer.from([0xff, 0xc2, 0, 11, 8, 1, 0, 2, 0, 1, 1, 0x11, 0])]),
  ];
}

export function tiffSeeds(): Buffer[] {
  // An 8-bit gray 2x2 TIFF (little-endian) and a float32 one (big-endian).
  const tiff = (le: boolean, bits: number, format: number): Buffer => {
    const entries: [number, number, number, number][] = [
      [256, 3, 1, 2],
      [257, 3, 1, 2],
      [258, 3, 1, bits],
      [259, 3, 1, 1],
      [262, 3, 1, 1],
      [273, 4, 1, 8 + 2 + 7 * 12 + 4],
      [277, 3, 1, 1],
      [339, 3, 1, format],
    ];
    const b = Buffer.alloc(8 + 2 + entries.length * 12 + 4 + 16);
    const u16 = (v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
    const u32 = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
    b.write(le ? 'II' : 'MM', 0, 'latin1');
    u16(42, 2);
    u32(8, 4);
    u16(entries.length, 8);
    entries.forEach(([tag, type, count, value], i) => {
      const o = 10 + i * 12;
      u16(tag, o);
      u16(type, o + 2);
      u32(count, o + 4);
      if (type === 3) u16(value, o + 8);
      else u32(value, o + 8);
    });
    return b;
  };
  return [tiff(true, 8, 1), tiff(false, 32, 3)];
}

export const CSV_SEEDS = [
  'image,map\nimg.png,map.npy\n',
  '\uFEFFimage,map,label\r\nimg.png,map.png,crack\r\n"img.png","map.tif","a ""quoted"", label"\r\n',
  'label,map,image\nx,map.npy,img.png\n,map.png,img.png\n\n',
];

// ---------------------------------------------------------------------------
// Mutation

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x2c, 0x22, 0x0a, 0x0d, 0x27, 0x28, 0x29, 0x2d, 0x39];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xffff, 0x10000, 65535 * 65535, 0x40000000];

export function mutateBytes(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  let b = Buffer.from(input);
  const n = 1 + Math.floor(rng() * 4);
  for (let m = 0; m < n; m++) {
    const at = Math.floor(rng() * Math.max(1, b.length));
    switch (Math.floor(rng() * 8)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << Math.floor(rng() * 8));
        break;
      case 1:
        if (b.length) b[at] = INTERESTING8[Math.floor(rng() * INTERESTING8.length)]!;
        break;
      case 2:
        if (b.length >= 4) {
          const o = Math.min(at, b.length - 4);
          const v = INTERESTING32[Math.floor(rng() * INTERESTING32.length)]!;
          if (rng() < 0.5) b.writeUInt32BE(v >>> 0, o);
          else b.writeUInt32LE(v >>> 0, o);
        }
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 8) }, () => Math.floor(rng() * 256))), b.subarray(at)]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rng() * 16)))]);
        break;
      case 5:
        b = b.subarray(0, Math.floor(rng() * b.length));
        break;
      case 6: {
        const other = corpus[Math.floor(rng() * corpus.length)]!;
        const from = Math.floor(rng() * other.length);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + Math.floor(rng() * 32))]);
        break;
      }
      default:
        if (b.length) {
          const len = Math.min(b.length - at, 1 + Math.floor(rng() * 8));
          b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        }
    }
  }
  return b;
}

const TOKENS = ['"', ',', '\n', '\r', '\r\n', '\uFEFF', 'image', 'map', 'label', '..', '/', '""', 'map.npy', 'map.tif', 'map.png', 'missing.png', '\0', ' '];

export function mutateText(rng: Rng, input: string): string {
  let s = input;
  const n = 1 + Math.floor(rng() * 3);
  for (let m = 0; m < n; m++) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.4) s = s.slice(0, at) + TOKENS[Math.floor(rng() * TOKENS.length)]! + s.slice(at);
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 6));
    else if (r < 0.85) s = s.slice(0, at) + String.fromCharCode(Math.floor(rng() * 0x3000)) + s.slice(at + 1);
    else s = s.slice(0, at);
  }
  return s;
}

/** Recomputes every chunk's CRC of a PNG whose chunk framing is intact enough to walk. */
export function fixPngCrcs(b: Buffer): Buffer {
  const out = Buffer.from(b);
  let pos = 8;
  while (pos + 12 <= out.length) {
    const len = out.readUInt32BE(pos);
    if (pos + 12 + len > out.length) break;
    out.writeUInt32BE(crc32(out.subarray(pos + 4, pos + 8 + len)) >>> 0, pos + 8 + len);
    pos += 12 + len;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Targets

export interface TargetStats {
  execs: number;
  ok: number;
  typed: number;
  outcomes: number;
  corpus: number;
  slowestMs: number;
  failures: { error: string; input: string }[];
}

interface Target {
  name: string;
  seeds: () => (Buffer | string)[];
  mutate: (rng: Rng, input: Buffer | string, corpus: readonly (Buffer | string)[]) => Buffer | string;
  run: (input: Buffer | string) => unknown;
}

function classify(e: unknown): string | undefined {
  if (e instanceof AnomalyNCDError && typeof e.code === 'string' && e.code.startsWith('ERR_'))
    return `${e.code}:${e.message.replace(/'[^']*'|"[^"]*"|\([^)]*\)/g, '…').replace(/\d+/g, '#').slice(0, 120)}`;
  return undefined;
}

/** The targets, over files in `dir` (created and reused). */
export function parserTargets(dir: string): Target[] {
  mkdirSync(dir, { recursive: true });
  const bytes = (rng: Rng, input: Buffer | string, corpus: readonly (Buffer | string)[]) => mutateBytes(rng, input as Buffer, corpus as Buffer[]);
  const pngMutate = (rng: Rng, input: Buffer | string, corpus: readonly (Buffer | string)[]) => {
    const m = mutateBytes(rng, input as Buffer, corpus as Buffer[]);
    return rng() < 0.5 ? fixPngCrcs(m) : m;
  };
  // A manifest's neighbours: the files its rows may name.
  const mdir = join(dir, 'manifest');
  mkdirSync(mdir, { recursive: true });
  writeFileSync(join(mdir, 'img.png'), pngSeeds()[1]!);
  writeFileSync(join(mdir, 'map.png'), pngSeeds()[0]!);
  writeFileSync(join(mdir, 'map.npy'), formatNpy(new Tensor('float32', [4, 5])));
  writeFileSync(join(mdir, 'map.tif'), tiffSeeds()[0]!);
  // A small MVTec AD layout whose ground-truth mask, image and map files are the mutated inputs.
  const mv = join(dir, 'mvtec', 'cat');
  for (const d of ['test/crack', 'test/good', 'ground_truth/crack']) mkdirSync(join(mv, d), { recursive: true });
  const mvMaps = join(dir, 'mvtec-maps', 'cat');
  for (const d of ['crack', 'good']) mkdirSync(join(mvMaps, d), { recursive: true });
  writeFileSync(join(mv, 'test/good/000.png'), pngSeeds()[0]!);
  writeFileSync(join(mvMaps, 'good/000.png'), pngSeeds()[0]!);
  // A small MTD layout (images are JPEG headers: only their sizes are read).
  const mtd = join(dir, 'mtd');
  for (const d of ['MT_Crack/Imgs', 'MT_Free/Imgs']) mkdirSync(join(mtd, d), { recursive: true });
  writeFileSync(join(mtd, 'MT_Free/Imgs/f1.jpg'), jpegSeeds()[0]!);
  writeFileSync(join(mtd, 'train_filenames.txt'), 'f0.jpg\n');
  let seq = 0;
  return [
    { name: 'npy', seeds: npySeeds, mutate: bytes, run: (b) => parseNpy(b as Buffer, 'fuzz') },
    { name: 'png-decode', seeds: pngSeeds, mutate: pngMutate, run: (b) => decodeGrayPng(b as Buffer, 'fuzz') },
    { name: 'png-header', seeds: pngSeeds, mutate: pngMutate, run: (b) => parsePngHeader(b as Buffer, 'fuzz') },
    {
      name: 'image-size',
      seeds: () => [...pngSeeds(), ...jpegSeeds()],
      mutate: (rng, input, corpus) => {
        const m = mutateBytes(rng, input as Buffer, corpus as Buffer[]);
        return m[0] === 0x89 && rng() < 0.5 ? fixPngCrcs(m) : m;
      },
      run: async (b) => {
        const p = join(dir, 'size.bin');
        writeFileSync(p, b as Buffer);
        return readImageSize(p);
      },
    },
    {
      name: 'manifest',
      seeds: () => [...CSV_SEEDS],
      mutate: (rng, input) => mutateText(rng, input as string),
      run: async (text) => {
        const p = join(mdir, 'm.csv');
        writeFileSync(p, text as string);
        return loadDataset({ kind: 'manifest', path: p });
      },
    },
    {
      name: 'mvtec-folder',
      // Inputs: [tag byte][file]: tag picks which file of the layout is replaced.
      seeds: () => [...pngSeeds().slice(0, 2), ...npySeeds().slice(0, 3), ...tiffSeeds()].map((b, i) => Buffer.concat([Buffer.from([i]), b])),
      mutate: bytes,
      run: async (b) => {
        const buf = b as Buffer;
        if (buf.length === 0) return undefined;
        const tag = buf[0]! % 6;
        const body = buf.subarray(1);
        rmSync(join(mv, 'test/crack'), { recursive: true, force: true });
        rmSync(join(mv, 'ground_truth/crack'), { recursive: true, force: true });
        rmSync(join(mvMaps, 'crack'), { recursive: true, force: true });
        mkdirSync(join(mv, 'test/crack'));
        mkdirSync(join(mv, 'ground_truth/crack'));
        mkdirSync(join(mvMaps, 'crack'));
        const image = tag === 0 ? body : pngSeeds()[1]!;
        writeFileSync(join(mv, 'test/crack/001.png'), image);
        writeFileSync(join(mv, 'ground_truth/crack/001_mask.png'), tag === 1 ? body : pngSeeds()[0]!);
        const mapExt = ['.png', '.png', '.npy', '.tif', '.png', '.npy'][tag]!;
        writeFileSync(join(mvMaps, `crack/001${mapExt}`), tag >= 2 ? body : pngSeeds()[0]!);
        if (tag === 4) writeFileSync(join(mvMaps, 'crack/002.png'), body); // a count mismatch
        const spec = tag <= 1 ? { kind: 'mvtec' as const, root: join(dir, 'mvtec'), category: 'cat', groundTruthAsMaps: true, binarizeGroundTruth: 128 } : { kind: 'mvtec' as const, root: join(dir, 'mvtec'), category: 'cat', maps: join(dir, 'mvtec-maps') };
        return loadDataset(spec);
      },
    },
    {
      name: 'mtd-folder',
      seeds: () => [...jpegSeeds(), ...pngSeeds().slice(0, 1), ...npySeeds().slice(0, 1)].map((b, i) => Buffer.concat([Buffer.from([i]), b])),
      mutate: bytes,
      run: async (b) => {
        const buf = b as Buffer;
        if (buf.length === 0) return undefined;
        const tag = buf[0]! % 4;
        const body = buf.subarray(1);
        const imgs = join(mtd, 'MT_Crack/Imgs');
        rmSync(imgs, { recursive: true, force: true });
        mkdirSync(imgs);
        seq++;
        writeFileSync(join(imgs, `c${seq % 3}.jpg`), tag === 0 || tag === 1 ? body : jpegSeeds()[0]!);
        writeFileSync(join(imgs, `c${seq % 3}.png`), tag === 2 ? body : pngSeeds()[0]!);
        writeFileSync(join(mtd, 'train_filenames.txt'), tag === 3 ? body : 'f0.jpg\n');
        return loadDataset({ kind: 'mtd', root: mtd, groundTruthAsMaps: true, binarizeGroundTruth: tag === 1 ? false : 1 });
      },
    },
  ];
}

/** Runs `execs` executions of `target` from its seeds; returns its statistics. */
export async function fuzzTarget(target: Target, seed: number, execs: number): Promise<TargetStats> {
  const rng = mulberry32(seed);
  const corpus: (Buffer | string)[] = target.seeds();
  const outcomes = new Set<string>();
  const stats: TargetStats = { execs: 0, ok: 0, typed: 0, outcomes: 0, corpus: 0, slowestMs: 0, failures: [] };
  for (let i = 0; i < execs; i++) {
    const input = i < corpus.length ? corpus[i]! : target.mutate(rng, corpus[Math.floor(rng() * corpus.length)]!, corpus);
    const t0 = performance.now();
    let outcome: string;
    try {
      const r = target.run(input);
      if (r instanceof Promise) await r;
      outcome = 'ok';
      stats.ok++;
    } catch (e) {
      const c = classify(e);
      if (c === undefined) {
        outcome = `UNTYPED ${(e as Error)?.name}`;
        if (stats.failures.length < 20)
          stats.failures.push({ error: `${(e as Error)?.name}: ${(e as Error)?.message}`, input: typeof input === 'string' ? JSON.stringify(input) : (input as Buffer).toString('base64') });
      } else {
        outcome = c;
        stats.typed++;
      }
    }
    stats.slowestMs = Math.max(stats.slowestMs, performance.now() - t0);
    stats.execs++;
    if (!outcomes.has(outcome)) {
      outcomes.add(outcome);
      if (i >= corpus.length && corpus.length < 4096) corpus.push(input);
    }
  }
  stats.outcomes = outcomes.size;
  stats.corpus = corpus.length;
  return stats;
}

/** A scratch folder for the file-based targets (on /dev/shm when there is one). */
export function scratchDir(): string {
  let base = tmpdir();
  try {
    const d = mkdtempSync(join('/dev/shm', 'anomalyncd-pfuzz-'));
    return d;
  } catch {
    base = tmpdir();
  }
  return mkdtempSync(join(base, 'anomalyncd-pfuzz-'));
}
