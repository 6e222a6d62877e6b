// The C++ stages' own self-tests (test/native/*_selftest.cc, built beside the
// addons by CMake): golden vectors from the reference Python (crop, Pillow
// resampling) and the single-pass MEBin against its per-threshold OpenCV
// oracle. Each ends with the shared harness's summary line
// ("OK: N checks, 0 failures", test/native/harness.h).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers.js';

function run(name: string, args: string[]): { status: number | null; out: string } {
  const exe = join(repoRoot, 'build', name);
  if (!existsSync(exe)) throw new Error(`${exe} is missing: build with \`npx cmake-js compile\` (ANOMALYNCD_SELFTESTS=ON)`);
  const r = spawnSync(exe, args, { cwd: repoRoot, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('MEBin: selection tables (docs/METHOD.md §2.7), raw-threshold equivalence and 3000 random maps against the OpenCV oracle', (t) => {
  const r = run('mebin_selftest', ['3000']);
  t.is(r.status, 0, r.out);
  t.regex(r.out, /random fast vs oracle: 3000 cases, 0 mismatches/);
  t.regex(r.out, /OK: \d+ checks, 0 failures/);
});

test('cropping and Pillow resampling match the reference goldens bit for bit', (t) => {
  const r = run('crop_selftest', [join(repoRoot, 'test', 'fixtures', 'crop_goldens.txt')]);
  t.is(r.status, 0, r.out);
  const m = /cases: (\d+) bicubic, (\d+) bilinear, (\d+) merge, (\d+) extract; (\d+) checks, (\d+) failures/.exec(r.out);
  t.truthy(m, r.out);
  t.is(m![6], '0');
  t.true(Number(m![4]) >= 20 && Number(m![3]) >= 30);
  t.regex(r.out, /OK: \d+ checks, 0 failures/);
});

test('MGViT: goldens, checkpoint decoding, hostile and fuzzed files, autograd, preprocessing', (t) => {
  const r = run('model_selftest', [join(repoRoot, 'test', 'fixtures', 'vit')]);
  t.is(r.status, 0, r.out);
  const m = /OK: (\d+) checks, 0 failures/.exec(r.out);
  t.truthy(m, r.out);
  t.true(Number(m![1]) >= 300);
});

test('training augmentations and the balanced sampler match Pillow/torchvision semantics and their statistics', (t) => {
  const r = run('augment_selftest', [join(repoRoot, 'test', 'fixtures', 'augment_goldens.txt')]);
  t.is(r.status, 0, r.out);
  const m = /OK: (\d+) checks, 0 failures/.exec(r.out);
  t.truthy(m, r.out);
  t.true(Number(m![1]) >= 400);
});
