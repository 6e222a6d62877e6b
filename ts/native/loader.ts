/**
 * The one loader of the native addon: prebuilds/ or build/ through
 * node-gyp-build, one actionable error when it cannot be loaded.
 * @internal
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorFromCode, NativeLoadError } from '../core/errors.js';
import type { Addon } from './addon-types.js';

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

let cached: Addon | undefined;

/** What the loader chose for OpenBLAS, for diagnostics. @internal */
export let blasCoretype: { value: string | undefined; source: 'user' | 'auto' | 'none' } = { value: undefined, source: 'none' };

/**
 * OpenBLAS 0.3.21 (Debian 12) misdetects recent x86 CPUs (e.g. AMD EPYC with
 * AVX-512) as "Prescott" and falls back to SSE3 kernels: a 2048² sgemm runs
 * at ~27 GFLOP/s instead of ~160. It reads OPENBLAS_CORETYPE once, when the
 * library loads with the addon, so the loader sets it first — only when the
 * user has not, only on Linux x64, and only to a kernel family whose
 * instructions /proc/cpuinfo proves present (so no other CPU is harmed).
 * ANOMALYNCD_BLAS_TUNE=0 turns this off.
 */
function tuneOpenBlas(): void {
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

/** Loads (once) and returns the native addon. */
export function addon(): Addon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  tuneOpenBlas();
  let loaded: Addon;
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Addon;
    loaded = nodeGypBuild(packageRoot);
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    const build = `cd ${packageRoot} && npx cmake-js compile`;
    let hint: string;
    if (/No native build was found/.test(message))
      hint = `No compiled addon was found in prebuilds/ or build/. Build it with \`${build}\` (needs cmake >= 3.18, a C++17 compiler, OpenCV (Debian: libopencv-dev) and libtorch: Debian's libtorch-dev, or LIBTORCH=/path/to/libtorch).`;
    else if (/libtorch|libc10|libtorch_cpu/.test(message))
      hint = `libtorch could not be loaded. Install Debian's libtorch-dev, or put the libtorch the addon was built against on LD_LIBRARY_PATH, or rebuild against yours with \`LIBTORCH=/path/to/libtorch ${build}\`.`;
    else if (/libopencv/.test(message))
      hint = `OpenCV could not be loaded. Install Debian's libopencv-dev (or its runtime libraries), or rebuild with \`${build}\`.`;
    else hint = `Rebuild it with \`${build}\`.`;
    throw new NativeLoadError(`anomalyncd: the native addon could not be loaded: ${message.split('\n')[0]}\n${hint}`, { cause: e });
  }
  loaded.setErrorClass(errorFromCode);
  cached = loaded;
  return loaded;
}

/**
 * The OpenCV stages' addon (decode, MEBin, crops). Until the split into two
 * `.node` files lands, both names load the one addon.
 */
export function coreAddon(): Addon {
  return addon();
}

/** The libtorch addon (model, training); loaded only when a model call needs it. */
export function modelAddon(): Addon {
  return addon();
}

/** Test-only kernels (synchronous building blocks). @internal */
export function testingAddon(): Addon {
  return addon();
}
