// npm install hook (npm 11 runs it; npm 12 runs it only once the project approves
// it: the library does not depend on it). Nothing to do when a binary loads: an
// installed platform package (anomalyncd-<platform>-<arch>-…, from
// optionalDependencies), prebuilds/<platform>-<arch>/ or an existing build —
// the loader's own order (ts/native/loader.ts). Otherwise compile with cmake-js.
// Both production addons must load: anomalyncd_core.node (OpenCV stages) and
// anomalyncd_model.node (libtorch), with anomalyncd_codecs.so beside them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const FILES = ['anomalyncd_core.node', 'anomalyncd_model.node', 'anomalyncd_codecs.so'];

/** Loads both addons through the compiled loader; undefined when it is not built (a fresh checkout). */
async function tryLoader() {
  const loaderJs = join(root, 'dist', 'ts', 'native', 'loader.js');
  if (!existsSync(loaderJs)) return undefined;
  const loader = await import(pathToFileURL(loaderJs).href);
  try {
    loader.coreAddon();
    loader.modelAddon();
  } catch (e) {
    return { ok: false, message: e.message };
  }
  // (A loader compiled before loaderReport existed still answers "it loads".)
  const model = loader.loaderReport?.().loaded.find((l) => l.addon === 'anomalyncd_model');
  return { ok: true, from: model ? model.source.name : 'prebuilds/ or build/' };
}

if (process.env.ANOMALYNCD_FORCE_BUILD !== '1') {
  const found = await tryLoader();
  if (found?.ok) {
    console.log(`anomalyncd: using the native addons from ${found.from}`);
    process.exit(0);
  }
  if (found === undefined) {
    // No compiled loader (a checkout before `npm run build:ts`): the files are enough.
    const dirs = [join(root, 'prebuilds', `${process.platform}-${process.arch}`), join(root, 'build', 'Release')];
    if (dirs.some((dir) => FILES.every((file) => existsSync(join(dir, file))))) process.exit(0);
  } else console.log(`anomalyncd: no prebuilt binary loads here, so it will be compiled.\n${found.message}\n`);
}
console.log('anomalyncd: compiling the native addons with cmake-js (needs cmake, g++, libtorch, OpenCV; a few minutes)');
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'anomalyncd: building the native addons failed. Install cmake, g++, OpenCV and libpng and libtorch ' +
      '(Debian 12, as root: apt-get install cmake g++ make libtorch-dev libopencv-dev libpng-dev; or set LIBTORCH to an official ' +
      "libtorch or a torch Python install's site-packages/torch), then run `npm rebuild anomalyncd` or `npx anomalyncd build`.",
  );
  process.exit(result.status ?? 1);
}
