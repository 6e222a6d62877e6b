// --device / --precision on the CLI (issue 8): the device used lands in the JSON outputs; an
// unmet CUDA request exits 5 with ERR_DEVICE; malformed values are usage errors (exit 2).
import test from 'ava';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSynthetic, writeNpy, Tensor } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { cli, tempDir, writeDinoCheckpoint, writePng } from './helpers.js';

function maps(dir: string): string {
  const d = join(dir, 'maps');
  mkdirSync(d, { recursive: true });
  generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 48, seed: 6 }).forEach((s, i) => {
    const m = s.map as Tensor;
    // float maps in [0, 1] -> 8-bit PNG maps
    const px = Array.from(m.data as ArrayLike<number>, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
    writePng(join(d, `m${i}.png`), m.shape[1]!, m.shape[0]!, px);
  });
  return d;
}

test('mebin --device: cpu and auto report cpu; cuda exits 5 (ERR_DEVICE); a bad value exits 2', (t) => {
  const dir = tempDir();
  const d = maps(dir);
  const used: Record<string, string> = {};
  for (const device of ['cpu', 'auto']) {
    const out = join(dir, `${device}.json`);
    const r = cli(['mebin', '--maps', d, '--out', out, '--device', device, '--threads', '1', '--json']);
    t.is(r.status, 0, r.stderr);
    used[device] = JSON.parse(readFileSync(out, 'utf8')).device;
    t.is(JSON.parse(r.stdout).device, used[device]);
  }
  t.is(used['cpu'], 'cpu');
  t.true(used['auto'] === 'cpu' || used['auto'] === 'cuda:0');
  const out = join(dir, 'cuda.json');
  const r = cli(['mebin', '--maps', d, '--out', out, '--device', used['auto'] === 'cpu' ? 'cuda' : 'cuda:9999']);
  t.is(r.status, 5, r.stderr);
  t.regex(r.stderr, /ERR_DEVICE: .*(built without CUDA|no CUDA device|out of range)/);
  t.false(existsSync(out));
  t.is(cli(['mebin', '--maps', d, '--out', out, '--device', 'gpu']).status, 2);
});

test('embed --device/--precision: the JSON summary says where and how', async (t) => {
  const dir = tempDir();
  const ckpt = join(dir, 'w.pth');
  writeDinoCheckpoint(ckpt, { dim: 384, depth: 1, patch: 16, image: 32 });
  const x = new Tensor('float32', [2, 3, 32, 32], new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i)));
  await writeNpy(join(dir, 'x.npy'), x);
  const base = ['embed', '--checkpoint', ckpt, '--images', join(dir, 'x.npy'), '--threads', '1', '--json'];
  const r32 = cli([...base, '--out', join(dir, 'y32.npy'), '--device', 'auto']);
  t.is(r32.status, 0, r32.stderr);
  const cuda = modelAddon().torch!.cudaBuilt && modelAddon().torch!.cudaAvailable;
  t.like(JSON.parse(r32.stdout), { device: cuda ? 'cuda:0' : 'cpu', precision: 'fp32' });
  const r16 = cli([...base, '--out', join(dir, 'y16.npy'), '--device', 'cpu', '--precision', 'bf16']);
  t.is(r16.status, 0, r16.stderr);
  t.like(JSON.parse(r16.stdout), { device: 'cpu', precision: 'bf16' });
  t.is(cli([...base, '--out', join(dir, 'y.npy'), '--precision', 'fp16']).status, 2);
  if (!cuda) t.is(cli([...base, '--out', join(dir, 'y.npy'), '--device', 'cuda:0']).status, 5);
});
