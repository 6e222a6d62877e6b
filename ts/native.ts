/**
 * The one loader of the native addon: prebuilds/ or build/ through
 * node-gyp-build, one actionable error when it cannot be loaded.
 * @internal
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorFromCode, NativeLoadError } from './errors.js';
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

/** Loads (once) and returns the native addon. */
export function addon(): Addon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
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
