// Shared test helpers: paths, a tiny PNG writer for crafting (bad) inputs,
// the Debian Python oracle, and CLI runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePng } from '../ts/png.js';

export { encodePng };

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = join(repoRoot, '..', 'shared');
export const mtdDir = join(sharedDir, 'data', 'mtd');
export const cliPath = join(repoRoot, 'dist', 'ts', 'cli.js');
/** Debian's Python, which has numpy/cv2/PIL/torch/sklearn as oracles (not pyenv's). */
export const oraclePython = '/usr/bin/python3';

export function tempDir(prefix = 'anomalyncd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
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
