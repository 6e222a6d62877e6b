// The loader's choice among binaries, with a fake installed layout: a copy of the
// compiled library as node_modules/anomalyncd, and platform packages whose
// binaries cannot load for known reasons (a real shared object needing a library
// that is gone; a file that is no ELF). Each case runs in a fresh process (the
// loader keeps what it loaded).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainLoadError } from '../ts/native/platforms.js';
import { gpuUsable } from '../ts/native/loader.js';
import { repoRoot, tempDir } from './helpers.js';

const CPU = 'anomalyncd-linux-x64-debian12-cpu';
const CUDA = 'anomalyncd-linux-x64-debian12-cuda';

function sh(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** node_modules/anomalyncd (dist + package.json) and a CPU platform package that cannot load. */
function layout(options: { build?: 'none' | 'link' | 'marked'; cuda?: boolean } = {}): { root: string; pkg: string } {
  const root = tempDir('anomalyncd-loader-');
  const pkg = join(root, 'node_modules', 'anomalyncd');
  mkdirSync(pkg, { recursive: true });
  cpSync(join(repoRoot, 'dist', 'ts'), join(pkg, 'dist', 'ts'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(pkg, 'package.json'));
  const release = join(repoRoot, 'build', 'Release');
  // The checkout's build, file by file (its own anomalyncd-build.json, if any, is not taken along).
  if (options.build === 'link' || options.build === 'marked') {
    mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
    for (const f of ['anomalyncd_core.node', 'anomalyncd_model.node', 'anomalyncd_codecs.so']) symlinkSync(join(release, f), join(pkg, 'build', 'Release', f));
    if (options.build === 'marked') writeFileSync(join(pkg, 'build', 'Release', 'anomalyncd-build.json'), '{}\n');
  }
  // The CPU package: its core addon needs libanomalyncd_gone.so.1, built and then removed.
  const cpu = join(root, 'node_modules', CPU);
  mkdirSync(cpu, { recursive: true });
  writeFileSync(join(cpu, 'gone.c'), 'int anomalyncd_gone(void) { return 1; }\n');
  writeFileSync(join(cpu, 'core.c'), 'extern int anomalyncd_gone(void);\nint anomalyncd_probe(void) { return anomalyncd_gone(); }\n');
  sh('cc', ['-shared', '-fPIC', '-o', 'libanomalyncd_gone.so.1', '-Wl,-soname,libanomalyncd_gone.so.1', 'gone.c'], cpu);
  sh('cc', ['-shared', '-fPIC', '-o', 'anomalyncd_core.node', 'core.c', '-L.', '-l:libanomalyncd_gone.so.1'], cpu);
  rmSync(join(cpu, 'libanomalyncd_gone.so.1'));
  writeFileSync(join(cpu, 'anomalyncd_model.node'), 'not an ELF file\n');
  writeFileSync(join(cpu, 'package.json'), JSON.stringify({ name: CPU, version: '0.1.0' }));
  writeFileSync(
    join(cpu, 'manifest.json'),
    JSON.stringify({
      name: CPU,
      files: { 'anomalyncd_core.node': [{ soname: 'libanomalyncd_gone.so.1', path: '/usr/lib/libanomalyncd_gone.so.1', debian: 'libanomalyncd-gone1' }] },
      aptPackages: ['libanomalyncd-gone1', 'libtorch1.13'],
      versions: { libtorch: '1.13.0', opencv: '4.6.0', openblas: null, cuda: null },
    }),
  );
  if (options.cuda) {
    const cuda = join(root, 'node_modules', CUDA);
    mkdirSync(cuda, { recursive: true });
    writeFileSync(join(cuda, 'package.json'), JSON.stringify({ name: CUDA, version: '0.1.0' }));
    writeFileSync(join(cuda, 'anomalyncd_core.node'), 'not an ELF file\n');
  }
  return { root, pkg };
}

/** Runs `code` (an ES module body with `loader` imported) in a fresh Node in the layout. */
function probe(pkg: string, code: string, env: NodeJS.ProcessEnv = {}): { status: number | null; out: Record<string, unknown>; stderr: string } {
  const loader = JSON.stringify(join(pkg, 'dist', 'ts', 'native', 'loader.js'));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const loader = await import(${loader});\n${code}`], {
    encoding: 'utf8',
    env: { ...process.env, ANOMALYNCD_BINARY: '', ...env },
  });
  return { status: r.status, out: r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {}, stderr: r.stderr };
}

const TRY_CORE = `try { loader.coreAddon(); console.log(JSON.stringify({ loaded: true, report: loader.loaderReport() })); } catch (e) { console.log(JSON.stringify({ loaded: false, name: e.name, code: e.code, message: e.message })); }`;

test('no loadable binary: one NativeLoadError naming the missing library, its Debian package, the fixes in order', (t) => {
  const { pkg } = layout({ build: 'none' });
  const r = probe(pkg, TRY_CORE);
  t.is(r.status, 0, r.stderr);
  t.false(r.out.loaded);
  t.is(r.out.code, 'ERR_NATIVE_LOAD');
  const message = r.out.message as string;
  t.true(message.includes(`${CPU} (${join(pkg, '..', CPU)}): missing shared library libanomalyncd_gone.so.1 (Debian package libanomalyncd-gone1)`), message);
  t.true(message.includes(`Or, to use the prebuilt ${CPU} as it is, install the libraries it links (Debian 12): apt-get install libanomalyncd-gone1 libtorch1.13`), message);
  t.true(message.includes('build/Release') && message.includes('not present (never built)'), message);
  const order = ['npm approve-scripts anomalyncd && npm rebuild anomalyncd', 'npx anomalyncd build', 'apt-get install cmake g++', 'Why no prebuilt'].map((s) => message.indexOf(s));
  t.true(order.every((i) => i >= 0), message);
  t.deepEqual([...order].sort((a, b) => a - b), order, 'approve + rebuild, build, system packages, then the reasons');
});

test('a rejected platform package falls through to build/Release, and the rejection is kept with its reason', (t) => {
  const { pkg } = layout({ build: 'link' });
  const r = probe(
    pkg,
    `loader.coreAddon(); loader.modelAddon(); console.log(JSON.stringify(loader.loaderReport()));`,
  );
  t.is(r.status, 0, r.stderr);
  const report = r.out as { loaded: { addon: string; source: { name: string } }[]; rejected: { source: string; addon: string; failure: { kind: string; reason: string; library?: string; debian?: string } }[] };
  t.deepEqual(report.loaded.map((l) => [l.addon, l.source.name]), [['anomalyncd_core', 'build/Release'], ['anomalyncd_model', 'build/Release']]);
  // Once one addon loaded from build/Release, the other is looked for there first (one source for both).
  t.deepEqual(report.rejected.map((x) => [x.source, x.addon, x.failure.kind]), [[CPU, 'anomalyncd_core', 'missing-library']]);
  t.is(report.rejected[0]!.failure.library, 'libanomalyncd_gone.so.1');
  t.is(report.rejected[0]!.failure.debian, 'libanomalyncd-gone1');
  const model = probe(pkg, `loader.modelAddon(); console.log(JSON.stringify(loader.loaderReport()));`);
  t.is(model.status, 0, model.stderr);
  const rejected = (model.out as typeof report).rejected;
  t.deepEqual(rejected.map((x) => [x.source, x.addon, x.failure.kind]), [[CPU, 'anomalyncd_model', 'platform']]);
  t.regex(rejected[0]!.failure.reason, /^platform: not a binary for linux-x64/);
});

test('the order: a build made by `anomalyncd build` first; a CUDA variant only with a usable GPU; ANOMALYNCD_BINARY selects one', (t) => {
  const { pkg } = layout({ build: 'marked', cuda: true });
  const r = probe(pkg, `console.log(JSON.stringify(loader.binarySources()));`);
  t.is(r.status, 0, r.stderr);
  const { sources, skipped } = r.out as { sources: { name: string }[]; skipped: { source: string; failure: { kind: string } }[] };
  const expected = ['build/Release', ...(gpuUsable() ? [CUDA] : []), CPU, 'prebuilds/linux-x64'];
  t.deepEqual(sources.map((s) => s.name), expected);
  if (!gpuUsable()) t.deepEqual(skipped.map((s) => [s.source, s.failure.kind]), [[CUDA, 'no-gpu']]);
  // CUDA_VISIBLE_DEVICES="" hides every GPU, whatever the machine has.
  const hidden = probe(pkg, `console.log(JSON.stringify(loader.binarySources()));`, { CUDA_VISIBLE_DEVICES: '' });
  t.deepEqual((hidden.out.sources as { name: string }[]).map((s) => s.name), ['build/Release', CPU, 'prebuilds/linux-x64']);
  // The marked build loads first, with nothing rejected before it.
  const loaded = probe(pkg, `loader.coreAddon(); console.log(JSON.stringify(loader.loaderReport()));`);
  t.is(loaded.status, 0, loaded.stderr);
  t.deepEqual((loaded.out.rejected as unknown[]).length, 0);
  // ANOMALYNCD_BINARY keeps only the named source: here the broken CPU package.
  const only = probe(pkg, TRY_CORE, { ANOMALYNCD_BINARY: CPU });
  t.false(only.out.loaded);
  t.true((only.out.message as string).includes(`ANOMALYNCD_BINARY=${CPU} selects another`), only.out.message as string);
});

test('explainLoadError reads the dynamic loader: missing library (with Debian package), ABI, platform', (t) => {
  const missing = explainLoadError('libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory');
  t.deepEqual([missing.kind, missing.library, missing.debian], ['missing-library', 'libtorch_cpu.so.1.13', 'libtorch1.13']);
  t.is(explainLoadError('libopencv_imgproc.so.406: cannot open shared object file: No such file or directory').debian, 'libopencv-imgproc406');
  t.is(explainLoadError('libpng16.so.16: cannot open shared object file: No such file or directory').debian, 'libpng16-16');
  t.is(explainLoadError('libfoo.so.3: cannot open shared object file: No such file or directory').debian, undefined);
  const glibcxx = explainLoadError("/usr/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /x/anomalyncd_model.node)");
  t.is(glibcxx.kind, 'abi');
  t.regex(glibcxx.reason, /C\+\+ runtime \(libstdc\+\+\).*GLIBCXX_3\.4\.32/);
  t.regex(explainLoadError("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found").reason, /C library \(glibc\)/);
  const symbol = explainLoadError('/x/anomalyncd_model.node: undefined symbol: _ZN2at4_ops5empty4callEv');
  t.is(symbol.kind, 'abi');
  t.regex(symbol.reason, /another libtorch/);
  t.is(explainLoadError('/x/anomalyncd_core.node: wrong ELF class: ELFCLASS32').kind, 'platform');
  t.is(explainLoadError('/x/anomalyncd_core.node: invalid ELF header').kind, 'platform');
  t.is(explainLoadError('/x/anomalyncd_core.node: file too short').kind, 'platform');
  t.is(explainLoadError('something else entirely').kind, 'other');
});
