// npm install hook: use the prebuilt addons (prebuilds/) or an existing build;
// otherwise compile with cmake-js. Both production addons must be there:
// anomalyncd_core.node (OpenCV stages) and anomalyncd_model.node (libtorch).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// The loader's search order (ts/native/loader.ts): prebuilds/<platform>-<arch>/, then build/Release/.
function haveAddon(name) {
  return [join(root, 'prebuilds', `${process.platform}-${process.arch}`), join(root, 'build', 'Release')].some((dir) =>
    existsSync(join(dir, `${name}.node`)),
  );
}

if (process.env.ANOMALYNCD_FORCE_BUILD !== '1' && haveAddon('anomalyncd_core') && haveAddon('anomalyncd_model')) process.exit(0);
console.log('anomalyncd: no prebuilt addons for this platform; compiling with cmake-js (needs cmake, g++, libtorch, OpenCV)');
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'anomalyncd: building the native addons failed. Install cmake, g++, OpenCV (Debian: libopencv-dev) and libtorch ' +
      "(Debian: libtorch-dev, or set LIBTORCH to an official libtorch or a torch Python install's site-packages/torch), then run `npm rebuild anomalyncd`.",
  );
  process.exit(result.status ?? 1);
}
