// Builds the addons and places the two production ones under
// prebuilds/<platform>-<arch>/ by name (anomalyncd_core.node,
// anomalyncd_model.node), so `npm pack` ships them and installs skip compiling.
// The model addon links libtorch dynamically: a prebuild is only valid for the
// libtorch it was built against (recorded beside it).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const built = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(target, { recursive: true });
const files = {};
for (const name of ['anomalyncd_core', 'anomalyncd_model']) {
  files[name] = join(target, `${name}.node`);
  copyFileSync(join(root, 'build', 'Release', `${name}.node`), files[name]);
}
const versions = require(files.anomalyncd_model).versions;
writeFileSync(join(target, 'BUILD_INFO.json'), JSON.stringify({ ...versions, node: process.version, builtAt: new Date().toISOString() }, null, 2) + '\n');
console.log(`prebuilds written: ${Object.values(files).join(', ')} (libtorch ${versions.libtorch}, OpenCV ${versions.opencv})`);
