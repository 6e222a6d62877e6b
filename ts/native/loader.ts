/**
 * The one loader of the native addons, by name: `anomalyncd_core.node` (OpenCV
 * stages), `anomalyncd_model.node` (libtorch; loaded only when a model call
 * needs it) and `anomalyncd_testing.node` (tests only), each from
 * `prebuilds/<platform>-<arch>/` or else `build/Release/`. A failure is one
 * actionable NativeLoadError.
 * @internal
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorFromCode, NativeLoadError } from '../core/errors.js';
import type { AddonBase, CoreAddon, ModelAddon, TestingAddon } from './addon-types.js';

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

type AddonName = 'anomalyncd_core' | 'anomalyncd_model' | 'anomalyncd_testing';

/** Where an addon may be, in the order tried. */
function candidates(name: AddonName): string[] {
  return [join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, `${name}.node`), join(packageRoot, 'build', 'Release', `${name}.node`)];
}

const loaded = new Map<AddonName, unknown>();

/** @internal Every addon loaded so far (each holds its own copy of the process-wide limits). */
export function loadedAddons(): AddonBase[] {
  return [...loaded.values()] as AddonBase[];
}

function load<T extends AddonBase>(name: AddonName): T {
  const hit = loaded.get(name);
  if (hit) return hit as T;
  // Before ANY addon: OpenCV's core links OpenBLAS too (Debian's LAPACK), and
  // the one OpenBLAS of the process reads its core type when it first loads.
  tuneOpenBlas();
  const build = `cd ${packageRoot} && npx cmake-js compile`;
  const file = candidates(name).find((f) => existsSync(f));
  let addon: T;
  try {
    if (!file) throw new Error(`No native build was found for ${name}.node`);
    addon = createRequire(import.meta.url)(file) as T;
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    let hint: string;
    if (/No native build was found/.test(message))
      hint =
        name === 'anomalyncd_testing'
          ? `The test-only addon is built with the self-tests: \`${build}\` (ANOMALYNCD_SELFTESTS=ON, the default) in a checkout.`
          : `No compiled addon was found in prebuilds/ or build/Release/. Build it with \`${build}\` (needs cmake >= 3.18, a C++17 compiler, OpenCV and libpng (Debian: libopencv-dev, libpng-dev) and libtorch: Debian's libtorch-dev, or LIBTORCH=/path/to/libtorch).`;
    else if (/libtorch|libc10|libtorch_cpu/.test(message))
      hint = `libtorch could not be loaded. Install Debian's libtorch-dev, or put the libtorch the addon was built against on LD_LIBRARY_PATH, or rebuild against yours with \`LIBTORCH=/path/to/libtorch ${build}\`.`;
    else if (/libopencv/.test(message))
      hint = `OpenCV could not be loaded. Install Debian's libopencv-dev (or its runtime libraries), or rebuild with \`${build}\`.`;
    else hint = `Rebuild it with \`${build}\`.`;
    throw new NativeLoadError(`anomalyncd: the native addon ${name}.node could not be loaded: ${message.split('\n')[0]}\n${hint}`, { cause: e });
  }
  addon.setErrorClass(errorFromCode);
  // Limits are process-wide; the core addon holds the values a later addon starts from.
  if (name !== 'anomalyncd_core') addon.setLimits(coreAddon().getLimits());
  loaded.set(name, addon);
  return addon;
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
