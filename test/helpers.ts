// Shared test helpers: paths, a tiny PNG writer for crafting (bad) inputs,
// the Debian Python oracle, and CLI runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = join(repoRoot, '..', 'shared');
export const mtdDir = join(sharedDir, 'data', 'mtd');
export const cliPath = join(repoRoot, 'dist', 'ts', 'cli.js');
/** Debian's Python, which has numpy/cv2/PIL/torch/sklearn as oracles (not pyenv's). */
export const oraclePython = '/usr/bin/python3';

export function tempDir(prefix = 'anomalyncd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** Encodes a PNG: colorType 0 (gray) or 2 (RGB), bitDepth 8 or 16; `pixels` row-major samples. */
export function encodePng(width: number, height: number, pixels: ArrayLike<number>, colorType: 0 | 2 = 0, bitDepth: 8 | 16 = 8): Buffer {
  const channels = colorType === 2 ? 3 : 1;
  const bytesPerSample = bitDepth / 8;
  const stride = width * channels * bytesPerSample;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    for (let i = 0; i < width * channels; i++) {
      const v = pixels[y * width * channels + i]!;
      const at = y * (stride + 1) + 1 + i * bytesPerSample;
      if (bitDepth === 8) raw[at] = v;
      else raw.writeUInt16BE(v, at);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function writePng(path: string, width: number, height: number, pixels: ArrayLike<number>, colorType: 0 | 2 = 0, bitDepth: 8 | 16 = 8): void {
  writeFileSync(path, encodePng(width, height, pixels, colorType, bitDepth));
}

/** Runs a Python snippet with the oracle interpreter; returns stdout. */
export function python(code: string, args: string[] = []): string {
  const r = spawnSync(oraclePython, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Runs the CLI; returns exit code, stdout, stderr. */
export function cli(args: string[], options: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', cwd: options.cwd ?? repoRoot, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A seeded PRNG for reproducible random tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
