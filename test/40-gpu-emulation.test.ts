// The CUDA kernels' logic without a GPU (issue 8): build/gpu_emulation_selftest runs the
// batched MEBin kernel bodies through the host emulation of their launches
// (cpp/gpu/emulate.h) against mebin::binarize on 3,000+ random maps and on maps derived
// from every MTD test mask, the fused [CLS]-row attention body against
// model::maskedAttention, and the no-device errors (test/native/gpu_emulation_selftest.cc).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mtdDir, repoRoot } from './helpers.js';

test('GPU kernels by host emulation: batched MEBin identical to the CPU single pass, [CLS]-row attention within 2e-5', (t) => {
  const exe = join(repoRoot, 'build', 'gpu_emulation_selftest');
  t.true(existsSync(exe), `${exe} is missing: build with \`npx cmake-js compile\` (ANOMALYNCD_SELFTESTS=ON)`);
  const r = spawnSync(exe, ['3000', mtdDir], { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 });
  const out = `${r.stdout}${r.stderr}`;
  t.is(r.status, 0, out);
  const random = /random emulated vs cpu: (\d+) maps in \d+ batches, (\d+) mismatches/.exec(out);
  t.truthy(random, out);
  t.true(Number(random![1]) >= 3000);
  t.is(random![2], '0');
  const mtd = /MTD-derived emulated vs cpu: (\d+) maps \((\d+) full size\), (\d+) mismatches/.exec(out);
  t.truthy(mtd, out);
  t.true(Number(mtd![1]) >= 500);
  t.is(mtd![3], '0');
  const attention = /attention emulated vs cpu: (\d+) fp32 cases, max abs (\S+); bf16 max abs (\S+)/.exec(out);
  t.truthy(attention, out);
  t.true(Number(attention![1]) >= 40);
  t.true(Number(attention![2]) <= 2e-5);
  t.regex(out, /OK: \d+ checks, 0 failures/);
});
