// `anomalyncd doctor` (facts and the per-stage self-test, text and --json) and
// `anomalyncd build` (rebuilds this checkout's addons in place, then marks the
// build to be loaded first).
import test from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cli, repoRoot } from './helpers.js';

test('doctor --json: the loaded binary, versions, CPU/GPU facts, and a passing self-test of every stage', (t) => {
  const r = cli(['doctor', '--json']);
  t.is(r.status, 0, r.stderr);
  const f = JSON.parse(r.stdout);
  t.true(f.ok);
  t.deepEqual(Object.keys(f), ['ok', 'package', 'node', 'searchOrder', 'binary', 'versions', 'blas', 'cuda', 'cpu', 'threads', 'selfTest']);
  t.deepEqual(
    f.binary.loaded.map((l: { addon: string; file: string }) => [l.addon, l.file]),
    [
      ['anomalyncd_core', join(repoRoot, 'build', 'Release', 'anomalyncd_core.node')],
      ['anomalyncd_model', join(repoRoot, 'build', 'Release', 'anomalyncd_model.node')],
    ],
  );
  // The versions the addon was compiled with are the installed headers' (Debian: libtorch 1.13, OpenCV 4.6 here).
  const torchHeader = readFileSync('/usr/include/torch/csrc/api/include/torch/version.h', 'utf8');
  const [, major, minor] = /TORCH_VERSION_MAJOR (\d+)[\s\S]*TORCH_VERSION_MINOR (\d+)/.exec(torchHeader)!;
  t.true(f.versions.libtorch.startsWith(`${major}.${minor}.`), f.versions.libtorch);
  t.regex(f.versions.opencv, /^4\.\d+\.\d+$/);
  // OpenBLAS is in the process (Debian's libtorch links it): its config names its version and the kernel it chose.
  t.regex(f.versions.openblas, /^OpenBLAS \d+\.\d+\.\d+/);
  t.is(typeof f.blas.core, 'string');
  // CPU flags agree with /proc/cpuinfo.
  const flags = new Set(readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'))!.split(':')[1]!.trim().split(/\s+/));
  t.is(f.cpu.features.avx512f, flags.has('avx512f'));
  t.is(f.cpu.features.bf16, flags.has('avx512_bf16') || flags.has('amx_bf16'));
  t.is(f.cuda.gpuVisible, existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/gpus'));
  t.is(f.cuda.available, f.cuda.devices > 0);
  t.is(f.threads.default, availableParallelism());
  t.deepEqual(f.selfTest.map((s: { stage: string; ok: boolean }) => [s.stage, s.ok]), [['decode', true], ['mebin', true], ['regions', true], ['model', true], ['train', true]]);
});

test('doctor (text) names where the binary came from and what was passed over', (t) => {
  const r = cli(['doctor', '--no-self-test']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /loaded anomalyncd_core\.node from build\/Release: /);
  t.regex(r.stdout, /passed over anomalyncd-linux-x64-debian12-cpu: not installed/);
  t.regex(r.stdout, /libtorch \d+\.\d+\.\d+ · OpenCV 4\.\d+\.\d+/);
  t.notRegex(r.stdout, /Self-test/);
});

test('build: rebuilds in place with a summary, and marks the build to be loaded first', (t) => {
  const marker = join(repoRoot, 'build', 'Release', 'anomalyncd-build.json');
  const before = Date.now();
  const r = cli(['build', '--json']);
  t.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.true(s.ok);
  t.is(s.dir, join(repoRoot, 'build', 'Release'));
  t.deepEqual(s.files.map((f: { file: string }) => f.file), ['anomalyncd_core.node', 'anomalyncd_model.node', 'anomalyncd_codecs.so'].map((f) => join(repoRoot, 'build', 'Release', f)));
  t.true(s.files.every((f: { bytes: number }) => f.bytes > 0));
  t.regex(s.libtorch, /^\d+\.\d+\.\d+$/);
  t.false(s.cuda);
  t.true(statSync(marker).mtimeMs >= before - 1000);
  t.is(JSON.parse(readFileSync(marker, 'utf8')).options.cuda, 'AUTO');
  t.regex(r.stderr, /anomalyncd build: cmake-js compile --CDCMAKE_BUILD_TYPE=Release --CDANOMALYNCD_CUDA=AUTO/);
  // The marked build is first in the search order.
  const d = cli(['doctor', '--json', '--no-self-test']);
  t.is(JSON.parse(d.stdout).searchOrder[0].name, 'build/Release');
});

test('build: a --libtorch without share/cmake/Torch is refused before anything runs (exit 2)', (t) => {
  const r = cli(['build', '--libtorch', join(repoRoot, 'cpp')]);
  t.is(r.status, 2);
  t.regex(r.stderr, /has no share\/cmake\/Torch/);
  const both = cli(['build', '--cuda', '--no-cuda']);
  t.is(both.status, 2);
});

test('the report built from a discover run names the native binary and library versions', async (t) => {
  const { discover, generateSynthetic, buildReportData, renderReport } = await import('anomalyncd');
  const samples = generateSynthetic({ perType: 1, good: 0, size: 96, mapSize: 48 });
  const result = await discover(
    samples.map((s) => ({ image: s.image, map: s.map, label: s.label })),
    { k: 2, arch: { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 }, epochs: 1, threads: 2 },
  );
  try {
    const data = buildReportData(result);
    t.regex(data.builtWith ?? '', /^native binary build\/Release · libtorch \d+\.\d+\.\d+ · OpenCV 4\.\d+\.\d+ · OpenBLAS [\d.]+ \(\w+\) · CPU build$/);
    t.true(renderReport(data).includes(`produced by anomalyncd (${data.builtWith!})`));
  } finally {
    result.model.dispose();
  }
});
