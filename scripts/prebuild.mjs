// Builds the addon and places it under prebuilds/<platform>-<arch>/ with
// node-gyp-build's naming, so `npm pack` ships it and installs skip compiling.
// The binary links libtorch dynamically: a prebuild is only valid for the
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
// node-gyp-build matches <name>.napi.node for N-API addons (any Node version).
const file = join(target, 'anomalyncd.napi.node');
copyFileSync(join(root, 'build', 'Release', 'anomalyncd.node'), file);
const addon = require(file);
writeFileSync(join(target, 'BUILD_INFO.json'), JSON.stringify({ ...addon.versions, node: process.version, builtAt: new Date().toISOString() }, null, 2) + '\n');
console.log(`prebuild written: ${file} (libtorch ${addon.versions.libtorch}, OpenCV ${addon.versions.opencv})`);
