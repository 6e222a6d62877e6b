// Shared test helpers: paths, a tiny PNG writer for crafting (bad) inputs,
// the Debian Python oracle, and CLI runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePng } from '../ts/io/png.js';
import { mulberry32 } from '../ts/core/random.js';

export { encodePng };

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedDir = join(repoRoot, '..', 'shared');
export const mtdDir = join(sharedDir, 'data', 'mtd');
/** MTD's six classes (five defect types and MT_Free), in sorted order. */
export const MTD_CLASSES = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Free', 'MT_Uneven'];
export const cliPath = join(repoRoot, 'dist', 'ts', 'cli', 'main.js');
/** Debian's Python, which has numpy/cv2/PIL/torch/sklearn as oracles (not pyenv's). */
export const oraclePython = '/usr/bin/python3';

/** MTD test-split stems per class (MT_Free: those not in the training list), the first `perClass` in sorted order. */
export function mtdTestStems(perClass: number): { cls: string; stem: string }[] {
  const train = new Set(readFileSync(join(mtdDir, 'train_filenames.txt'), 'utf8').split(/\s+/).filter(Boolean));
  return MTD_CLASSES.flatMap((cls) =>
    readdirSync(join(mtdDir, cls, 'Imgs'))
      .filter((f) => f.endsWith('.jpg') && !train.has(f))
      .sort()
      .slice(0, perClass)
      .map((f) => ({ cls, stem: f.slice(0, -4) })),
  );
}

const tempDirs: string[] = [];
let cleanupHooked = false;

/** A fresh temporary folder, removed when the test process exits (each test file runs in its own process). */
export function tempDir(prefix = 'anomalyncd-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  if (!cleanupHooked) {
    cleanupHooked = true;
    process.once('exit', () => {
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
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

/**
 * Writes a DINO-layout ViT state dict (the backbone keys of DINO's release files) with
 * torch.save: random N(0, 0.02) weights from `seed` (or zeros), LayerNorms at identity;
 * `head` adds DINO's classifier key, which the loader ignores.
 */
export function writeDinoCheckpoint(
  path: string,
  geometry: { dim: number; depth: number; patch: number; image?: number; zeros?: boolean; seed?: number; head?: boolean },
): void {
  python(
    `import torch, sys
D, depth, P, S, zeros = ${geometry.dim}, ${geometry.depth}, ${geometry.patch}, ${geometry.image ?? 224}, ${geometry.zeros ? 'True' : 'False'}
torch.manual_seed(${geometry.seed ?? 0})
r = (lambda *s: torch.zeros(*s)) if zeros else (lambda *s: torch.randn(*s) * 0.02)
n = (S // P) ** 2 + 1
sd = {'cls_token': r(1, 1, D), 'pos_embed': r(1, n, D), 'patch_embed.proj.weight': r(D, 3, P, P), 'patch_embed.proj.bias': torch.zeros(D)}
for i in range(depth):
    b = 'blocks.%d.' % i
    sd.update({b + 'norm1.weight': torch.ones(D), b + 'norm1.bias': torch.zeros(D), b + 'attn.qkv.weight': r(3 * D, D), b + 'attn.qkv.bias': r(3 * D),
               b + 'attn.proj.weight': r(D, D), b + 'attn.proj.bias': torch.zeros(D), b + 'norm2.weight': torch.ones(D), b + 'norm2.bias': torch.zeros(D),
               b + 'mlp.fc1.weight': r(4 * D, D), b + 'mlp.fc1.bias': torch.zeros(4 * D), b + 'mlp.fc2.weight': r(D, 4 * D), b + 'mlp.fc2.bias': torch.zeros(D)})
sd.update({'norm.weight': torch.ones(D), 'norm.bias': torch.zeros(D)})
if ${geometry.head ? 'True' : 'False'}:
    sd['head.weight'] = torch.zeros(10, D)
torch.save(sd, sys.argv[1])`,
    [path],
  );
}

/** Runs the CLI; returns exit code, stdout, stderr. */
export function cli(args: string[], options: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', cwd: options.cwd ?? repoRoot, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A seeded PRNG for reproducible random tests (the library's mulberry32). */
export const prng = mulberry32;

/** A standard normal draw (Box–Muller) from a uniform source. */
export function gaussian(rnd: () => number): number {
  const u = Math.max(rnd(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

/**
 * `k` isotropic Gaussian blobs of `per` points each in `dim` dimensions, centres uniform in
 * ±separation per axis; interleaved (labels = i % k) so that sample order says nothing about the class.
 */
export function blobs(k: number, per: number, dim: number, seed: number, spread = 1, separation = 20): { data: Float32Array; truth: number[]; n: number } {
  const rnd = prng(seed);
  const centres = Array.from({ length: k }, () => Array.from({ length: dim }, () => (rnd() - 0.5) * 2 * separation));
  const n = k * per;
  const data = new Float32Array(n * dim);
  const truth: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % k;
    truth.push(c);
    for (let t = 0; t < dim; t++) data[i * dim + t] = centres[c]![t]! + spread * gaussian(rnd);
  }
  return { data, truth, n };
}
