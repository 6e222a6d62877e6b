import test from 'ava';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import {
  AnomalyNCDError,
  binarize,
  extractRegions,
  InvalidArgumentError,
  IoError,
  nativeVersions,
  Tensor,
} from 'anomalyncd';
import { repoRoot } from './helpers.js';

test('the addon loads and reports its libraries', (t) => {
  const v = nativeVersions();
  t.regex(v.libtorch, /^\d+\.\d+/);
  t.regex(v.opencv, /^4\./);
});

test('native errors are instances of the TS error family with a code', async (t) => {
  const err = await t.throwsAsync(binarize(['/nonexistent/map.png']), { instanceOf: IoError });
  t.true(err instanceof AnomalyNCDError);
  t.is(err.code, 'ERR_IO');
  t.regex(err.message, /\/nonexistent\/map\.png/);
});

test('option checks name the option', async (t) => {
  const map = new Tensor('uint8', [4, 4]);
  await t.throwsAsync(binarize([map], { sampleRate: 0 }), { instanceOf: InvalidArgumentError, message: /sampleRate/ });
  await t.throwsAsync(binarize([map], { range: [10, 10] }), { instanceOf: InvalidArgumentError, message: /range/ });
  await t.throwsAsync(binarize([map], { threads: 0 }), { instanceOf: InvalidArgumentError, message: /threads/ });
  await t.throwsAsync(binarize([]), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(binarize([new Tensor('uint8', [4, 4, 3])]), { instanceOf: InvalidArgumentError, message: /maps\[0\].*\[H, W\]/ });
  await t.throwsAsync(binarize([{ dtype: 'uint8', shape: [3, 3], data: new Uint8Array(4) } as unknown as Tensor]), {
    instanceOf: InvalidArgumentError,
  });
  await t.throwsAsync(extractRegions([new Tensor('uint8', [8, 8, 3])], []), { instanceOf: InvalidArgumentError, message: /paired/ });
  await t.throwsAsync(extractRegions([new Tensor('float32', [8, 8, 3])], [map]), { instanceOf: InvalidArgumentError, message: /images\[0\]/ });
});

test('a Tensor whose shape does not match its data is refused by the native layer too', async (t) => {
  // Bypass the TS checks to prove the C++ side validates on its own.
  const { coreAddon: addon } = (await import('../ts/native/loader.js')) as typeof import('../ts/native/loader.js');
  const bad = { dtype: 'uint8', shape: [5, 5], data: new Uint8Array(10) };
  t.throws(() => addon().binarize([bad], {} as never), { instanceOf: InvalidArgumentError, message: /25 elements but data has 10/ });
  const mislabelled = { dtype: 'float32', shape: [2, 2], data: new Uint8Array(4) };
  t.throws(() => addon().binarize([mislabelled], {} as never), { instanceOf: InvalidArgumentError, message: /does not match/ });
});

test('import works from the repo root and require() gives the same module (CJS interop)', async (t) => {
  const esm = await import('anomalyncd');
  const require = createRequire(import.meta.url);
  const cjs = require('anomalyncd') as typeof esm;
  t.is(cjs.AnomalyNCDError, esm.AnomalyNCDError);
  const r = spawnSync(process.execPath, ['-e', "const a = require('anomalyncd'); console.log(typeof a.binarize, typeof a.extractRegions)"], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  t.is(r.stdout.trim(), 'function function', r.stderr);
});
