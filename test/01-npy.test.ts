import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError, formatNpy, parseNpy, readNpy, Tensor, writeNpy, IoError } from 'anomalyncd';
import { python, tempDir } from './helpers.js';

test('npy round trip for every dtype', async (t) => {
  const dir = tempDir();
  const cases = [
    new Tensor('float32', [2, 3], Float32Array.from([1.5, -2, 3, 4, 5e-8, Number.POSITIVE_INFINITY])),
    new Tensor('float64', [3], Float64Array.from([Math.PI, -0, 1e300])),
    new Tensor('uint8', [2, 2, 2], Uint8Array.from([0, 1, 2, 3, 252, 253, 254, 255])),
    new Tensor('int64', [2], BigInt64Array.from([-(2n ** 62n), 42n])),
    new Tensor('int32', [1, 1], Int32Array.from([-7])),
    new Tensor('float32', [0, 4]),
  ];
  for (const [i, tensor] of cases.entries()) {
    const path = join(dir, `${i}.npy`);
    await writeNpy(path, tensor);
    const back = await readNpy(path);
    t.is(back.dtype, tensor.dtype);
    t.deepEqual(back.shape, tensor.shape);
    t.deepEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(tensor.data as ArrayLike<unknown>));
  }
});

test('npy files agree with NumPy in both directions', async (t) => {
  const dir = tempDir();
  const ours = join(dir, 'ours.npy');
  await writeNpy(ours, new Tensor('float32', [2, 2], Float32Array.from([1, 2, 3, 4.25])));
  const theirs = join(dir, 'theirs.npy');
  const out = python(
    `import numpy as np, sys
a = np.load(sys.argv[1]); print(a.dtype, a.shape, a.sum())
np.save(sys.argv[2], np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 5)
np.save(sys.argv[3], np.linspace(0, 1, 7))`,
    [ours, theirs, join(dir, 'f64.npy')],
  );
  t.is(out.trim(), 'float32 (2, 2) 10.25');
  const back = await readNpy(theirs);
  t.is(back.dtype, 'int64');
  t.deepEqual(back.shape, [2, 3, 4]);
  t.is(back.data[23], 18n);
  const f64 = await readNpy(join(dir, 'f64.npy'));
  t.deepEqual(f64.shape, [7]);
  t.is(f64.data[6], 1);
});

test('npy bad input gives typed errors naming the file', async (t) => {
  const dir = tempDir();
  const good = formatNpy(new Tensor('float32', [4, 4]));
  const truncated = join(dir, 'truncated.npy');
  writeFileSync(truncated, good.subarray(0, good.length - 3));
  const err = await t.throwsAsync(readNpy(truncated), { instanceOf: BadInputError });
  t.regex(err.message, /truncated\.npy.*truncated/);
  t.throws(() => parseNpy(Buffer.from('not numpy at all')), { instanceOf: BadInputError, message: /bad magic/ });
  const fortran = Buffer.from(good);
  const header = fortran.toString('latin1', 10, 10 + fortran.readUInt16LE(8)).replace("'fortran_order': False", "'fortran_order': True ");
  fortran.write(header, 10, 'latin1');
  t.throws(() => parseNpy(fortran), { message: /Fortran/ });
  const bigEndian = Buffer.from(good);
  bigEndian.write(bigEndian.toString('latin1', 10, 40).replace('<f4', '>f4'), 10, 'latin1');
  t.throws(() => parseNpy(bigEndian), { instanceOf: BadInputError, message: />f4/ });
  await t.throwsAsync(readNpy(join(dir, 'missing.npy')), { instanceOf: IoError, message: /missing\.npy/ });
  t.true(readFileSync(truncated).length > 0);
});
