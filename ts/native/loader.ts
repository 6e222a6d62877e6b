/**
 * The one loader of the native addons, by name: `anomalyncd_core.node` (OpenCV
 * stages), `anomalyncd_model.node` (libtorch; loaded only when a model call
 * needs it) and `anomalyncd_testing.node` (tests only). Where from, in order:
 * `build/Release/` when `anomalyncd build` made it (the user asked for it), the
 * installed platform packages (`anomalyncd-<platform>-<arch>-…`: the CUDA
 * variant when a GPU is usable, then the CPU one), `prebuilds/<platform>-<arch>/`,
 * then `build/Release/`. Each candidate that does not load is remembered with
 * the reason (missing shared library and its Debian package, ABI, platform);
 * when none loads, one NativeLoadError names the fix and every reason.
 * @internal
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorFromCode, NativeLoadError } from '../core/errors.js';
import type { AddonBase, CoreAddon, ModelAddon, TestingAddon } from './addon-types.js';
import { explainLoadError, variantsFor, type LoadFailure, type PlatformManifest } from './platforms.js';

/** The package root (holds package.json, prebuilds/ and build/). */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new NativeLoadError('anomalyncd: cannot find its package.json above ' + dirname(fileURLToPath(import.meta.url)));
    dir = up;
  }
  return dir;
})();

/** What the loader chose for OpenBLAS, for diagnostics. @internal */
export let blasCoretype: { value: string | undefined; source: 'user' | 'auto' | 'none' } = { value: undefined, source: 'none' };

/**
 * OpenBLAS 0.3.21 (Debian 12) misdetects recent x86 CPUs (e.g. AMD EPYC with
 * AVX-512) as "Prescott" and falls back to SSE3 kernels: a 2048² sgemm runs
 * at ~27 GFLOP/s instead of ~160. It reads OPENBLAS_CORETYPE once, when the
 * library loads with an addon, so the loader sets it first — only when the
 * user has not, only on Linux x64, and only to a kernel family whose
 * instructions /proc/cpuinfo proves present (so no other CPU is harmed).
 * ANOMALYNCD_BLAS_TUNE=0 turns this off.
 */
let blasTuned = false;
function tuneOpenBlas(): void {
  if (blasTuned) return;
  blasTuned = true;
  if (process.env.OPENBLAS_CORETYPE) {
    blasCoretype = { value: process.env.OPENBLAS_CORETYPE, source: 'user' };
    return;
  }
  if (process.env.ANOMALYNCD_BLAS_TUNE === '0' || process.platform !== 'linux' || process.arch !== 'x64') return;
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return;
  }
  const has = (...names: string[]) => names.every((n) => flags.has(n));
  const coretype = has('avx512f', 'avx512vl', 'avx512bw', 'avx512dq', 'avx512_bf16')
    ? 'Cooperlake'
    : has('avx512f', 'avx512vl', 'avx512bw', 'avx512dq')
      ? 'SkylakeX'
      : has('avx2', 'fma')
        ? 'Haswell'
        : undefined;
  if (coretype) {
    process.env.OPENBLAS_CORETYPE = coretype;
    blasCoretype = { value: coretype, source: 'auto' };
  }
}

export type AddonName = 'anomalyncd_core' | 'anomalyncd_model' | 'anomalyncd_testing';

/** A place the addons may be loaded from. */
export interface BinarySource {
  /** `package`: an installed platform package; `prebuilds`/`build`: folders of this package. */
  readonly kind: 'package' | 'prebuilds' | 'build';
  /** The package name, or `prebuilds/<platform>-<arch>`, or `build/Release`. */
  readonly name: string;
  readonly dir: string;
  /** A platform package's manifest. */
  readonly manifest?: PlatformManifest;
}

/** A source that was passed over, and why. */
export interface Rejection {
  readonly source: string;
  readonly dir: string | null;
  readonly addon: AddonName | null;
  readonly failure: LoadFailure | { kind: 'absent' | 'no-gpu'; reason: string };
}

/** Written into build/Release by `anomalyncd build`: that build is then tried first. */
export const BUILD_MARKER = 'anomalyncd-build.json';

/** Whether a CUDA variant is worth trying: an NVIDIA device node and no CUDA_VISIBLE_DEVICES hiding it. */
export function gpuUsable(): boolean {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && (visible.trim() === '' || visible.trim() === '-1')) return false;
  return process.platform === 'linux' && (existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/gpus'));
}

function readManifest(dir: string): PlatformManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as PlatformManifest;
  } catch {
    return undefined;
  }
}

/**
 * Every source, in the order tried, and those passed over before trying
 * (platform packages not installed, a CUDA variant without a usable GPU).
 * ANOMALYNCD_BINARY=<package name|prebuilds|build> tries only that one.
 */
export function binarySources(): { sources: BinarySource[]; skipped: Rejection[] } {
  const sources: BinarySource[] = [];
  const skipped: Rejection[] = [];
  const build: BinarySource = { kind: 'build', name: 'build/Release', dir: join(packageRoot, 'build', 'Release') };
  const userBuilt = existsSync(join(build.dir, BUILD_MARKER));
  if (userBuilt) sources.push(build);
  const resolver = createRequire(join(packageRoot, 'package.json'));
  for (const variant of variantsFor()) {
    let dir: string;
    try {
      dir = dirname(resolver.resolve(`${variant.name}/package.json`));
    } catch {
      skipped.push({ source: variant.name, dir: null, addon: null, failure: { kind: 'absent', reason: 'not installed' } });
      continue;
    }
    if (variant.accelerator === 'cuda' && !gpuUsable() && process.env.ANOMALYNCD_BINARY !== variant.name) {
      skipped.push({ source: variant.name, dir, addon: null, failure: { kind: 'no-gpu', reason: 'no usable NVIDIA GPU (no /dev/nvidia0, or CUDA_VISIBLE_DEVICES hides it)' } });
      continue;
    }
    const manifest = readManifest(dir);
    sources.push({ kind: 'package', name: variant.name, dir, ...(manifest ? { manifest } : {}) });
  }
  const platformDir = `${process.platform}-${process.arch}`;
  sources.push({ kind: 'prebuilds', name: `prebuilds/${platformDir}`, dir: join(packageRoot, 'prebuilds', platformDir) });
  if (!userBuilt) sources.push(build);
  const only = process.env.ANOMALYNCD_BINARY;
  if (only) {
    const keep = sources.filter((s) => s.name === only || s.kind === only);
    for (const s of sources) if (!keep.includes(s)) skipped.push({ source: s.name, dir: s.dir, addon: null, failure: { kind: 'absent', reason: `ANOMALYNCD_BINARY=${only} selects another` } });
    return { sources: keep, skipped };
  }
  return { sources, skipped };
}

const loaded = new Map<AddonName, { addon: unknown; source: BinarySource; file: string }>();
const rejections: Rejection[] = [];
/** The source the first addon loaded from: the others are tried there first. */
let chosen: BinarySource | undefined;

/** What the loader found so far: each loaded addon's file and source, and every source passed over. @internal */
export function loaderReport(): { loaded: { addon: AddonName; file: string; source: BinarySource }[]; rejected: Rejection[]; skipped: Rejection[] } {
  return {
    loaded: [...loaded].map(([addon, { file, source }]) => ({ addon, file, source })),
    rejected: [...rejections],
    skipped: binarySources().skipped,
  };
}

/** The commands that fix a missing build, in the order to try them (also printed by install.mjs). */
export const BUILD_TOOLS_DEBIAN = 'cmake g++ make libtorch-dev libopencv-dev libpng-dev';

/** The one message when no source holds a loadable `name`. */
export function noBinaryMessage(name: AddonName, tried: readonly Rejection[]): string {
  const where = `${process.platform}-${process.arch}, Node ${process.version}, N-API ${process.versions.napi ?? '?'}`;
  if (name === 'anomalyncd_testing')
    return (
      `anomalyncd: the test-only addon anomalyncd_testing.node is not built (${where}). It is built with the self-tests ` +
      `(ANOMALYNCD_SELFTESTS=ON, the default) in a checkout: \`cd ${packageRoot} && npx cmake-js compile\`.\n` +
      tried.map((r) => `  - ${r.source}: ${r.failure.reason}`).join('\n')
    );
  const lines = [
    `anomalyncd: no native addon ${name}.node could be loaded (${where}).`,
    'Fix, in this order:',
    "  1. Approve anomalyncd's install script and rebuild (it compiles the addon for this machine):",
    '       npm approve-scripts anomalyncd && npm rebuild anomalyncd',
    '     (npm 12 blocks dependency install scripts until approved; npm 11.19 accepts the same command, or',
    '     `npm install-scripts approve anomalyncd`; an npm that runs install scripts needs only `npm rebuild anomalyncd`.)',
    '  2. Or compile it in place: npx anomalyncd build   (--libtorch DIR for another libtorch, --cuda for CUDA)',
    `  Both need, first (Debian 12, as root): apt-get install ${BUILD_TOOLS_DEBIAN}` +
      ' (or set LIBTORCH to an official libtorch / a torch install instead of libtorch-dev).',
  ];
  const missing = tried.filter((r) => r.failure.kind === 'missing-library');
  const packages = tried.filter((r) => r.dir && readManifest(r.dir));
  for (const r of packages) {
    const manifest = readManifest(r.dir!)!;
    if (missing.some((m) => m.source === r.source) && manifest.aptPackages.length > 0)
      lines.push(`  Or, to use the prebuilt ${r.source} as it is, install the libraries it links (Debian 12): apt-get install ${manifest.aptPackages.join(' ')}`);
  }
  lines.push('Why no prebuilt or built binary loaded:');
  for (const r of tried) lines.push(`  - ${r.source}${r.dir ? ` (${r.dir})` : ''}: ${r.failure.reason}`);
  lines.push('`npx anomalyncd doctor` shows what the library finds.');
  return lines.join('\n');
}

/** @internal Every addon loaded so far (each holds its own copy of the process-wide limits). */
export function loadedAddons(): AddonBase[] {
  return [...loaded.values()].map((l) => l.addon as AddonBase);
}

function load<T extends AddonBase>(name: AddonName): T {
  const hit = loaded.get(name);
  if (hit) return hit.addon as T;
  // Before ANY addon: OpenCV's core links OpenBLAS too (Debian's LAPACK), and
  // the one OpenBLAS of the process reads its core type when it first loads.
  tuneOpenBlas();
  const { sources, skipped } = binarySources();
  // The addons come from one source when they can: the first one's is tried first.
  if (chosen) {
    const first = sources.findIndex((s) => s.dir === chosen!.dir);
    if (first > 0) sources.unshift(...sources.splice(first, 1));
  }
  const tried: Rejection[] = [...skipped];
  const require = createRequire(import.meta.url);
  for (const source of sources) {
    const file = join(source.dir, `${name}.node`);
    if (!existsSync(file)) {
      tried.push({ source: source.name, dir: source.dir, addon: name, failure: { kind: 'absent', reason: existsSync(source.dir) ? `no ${name}.node there` : 'not present (never built)' } });
      continue;
    }
    let addon: T;
    try {
      addon = require(file) as T;
    } catch (e) {
      const failure = explainLoadError((e as Error).message ?? String(e), source.manifest);
      const rejection: Rejection = { source: source.name, dir: source.dir, addon: name, failure };
      tried.push(rejection);
      rejections.push(rejection);
      continue;
    }
    addon.setErrorClass(errorFromCode);
    loaded.set(name, { addon, source, file });
    chosen ??= source;
    // Limits are process-wide; the core addon holds the values a later addon starts from
    // (looked for where this one loaded: `chosen` is set first).
    if (name !== 'anomalyncd_core') addon.setLimits(coreAddon().getLimits());
    return addon;
  }
  throw new NativeLoadError(noBinaryMessage(name, tried));
}

/** The OpenCV stages' addon (decode, MEBin, crops); it never loads libtorch. */
export function coreAddon(): CoreAddon {
  return load<CoreAddon>('anomalyncd_core');
}

/** The libtorch addon (model, training); loaded only when a model call needs it. */
export function modelAddon(): ModelAddon {
  return load<ModelAddon>('anomalyncd_model');
}

/** Test-only kernels (synchronous building blocks). @internal */
export function testingAddon(): TestingAddon {
  return load<TestingAddon>('anomalyncd_testing');
}
