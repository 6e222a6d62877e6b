// npm install hook: use a prebuilt addon (prebuilds/) or an existing build;
// otherwise compile with cmake-js. node-gyp-build's own fallback would run
// node-gyp, which cannot build this CMake project.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function haveBuild() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

if (process.env.ANOMALYNCD_FORCE_BUILD !== '1' && haveBuild()) process.exit(0);
console.log('anomalyncd: no prebuilt addon for this platform; compiling with cmake-js (needs cmake, g++, libtorch, OpenCV)');
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'anomalyncd: building the native addon failed. Install cmake, g++, OpenCV (Debian: libopencv-dev) and libtorch ' +
      "(Debian: libtorch-dev, or set LIBTORCH to an official libtorch or a torch Python install's site-packages/torch), then run `npm rebuild anomalyncd`.",
  );
  process.exit(result.status ?? 1);
}
