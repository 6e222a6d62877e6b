import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, InvalidArgumentError, IoError, loadBackbone, preprocess, readNpy, Tensor, writeNpy } from 'anomalyncd';
import { cli, prng, repoRoot, tempDir } from './helpers.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'vit');
const TINY = { patchSize: 8, embedDim: 32, depth: 4, numHeads: 2, maskLayers: 3 };
const cases = readFileSync(join(fixtures, 'cases.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ')[0]!);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const file of ['tiny_vit.pth', 'tiny_vit.safetensors'])
  for (const attention of ['fused', 'plain'] as const)
    test(`MGViT matches the independent PyTorch oracle (${file}, ${attention} attention)`, async (t) => {
      const model = await loadBackbone(join(fixtures, file), { arch: { ...TINY, attention } });
      t.is(model.config.imageSize, 32);
      t.is(model.config.attention, attention);
      t.true(cases.length >= 6);
      for (const name of cases) {
        const x = await readNpy(join(fixtures, `case_${name}_x.npy`));
        const mask = await readNpy(join(fixtures, `case_${name}_mask.npy`));
        const want = await readNpy(join(fixtures, `case_${name}_out.npy`));
        const got = await model.embed(x, mask, { threads: 2 });
        t.deepEqual(got.shape, want.shape, name);
        const diff = maxAbsDiff(got.data, want.data as Float32Array);
        t.true(diff <= 1e-4, `${name}: max |Δ| = ${diff}`);
      }
      model.dispose();
      t.true(model.disposed);
      await t.throwsAsync(model.embed(new Tensor('float32', [1, 3, 32, 32])), { instanceOf: InvalidArgumentError, message: /disposed/ });
    });

test('.pth and .safetensors of the same weights give identical outputs; batches agree with single images', async (t) => {
  const a = await loadBackbone(join(fixtures, 'tiny_vit.pth'), { arch: TINY });
  const b = await loadBackbone(join(fixtures, 'tiny_vit.safetensors'), { arch: TINY });
  const x = await readNpy(join(fixtures, 'case_sq_b3_x.npy'));
  const m = await readNpy(join(fixtures, 'case_sq_b3_mask.npy'));
  const ya = await a.embed(x, m);
  const yb = await b.embed(x, m);
  t.deepEqual(Buffer.from(ya.data.buffer, ya.data.byteOffset, ya.data.byteLength), Buffer.from(yb.data.buffer, yb.data.byteOffset, yb.data.byteLength));
  // One image per forward: other GEMM shapes, so equal up to float rounding.
  const single = await b.embed(x, m, { batchSize: 1 });
  t.true(maxAbsDiff(single.data, ya.data) <= 1e-5);
  const unguided = await a.embed(x);
  t.true(maxAbsDiff(unguided.data, ya.data) > 1e-3, 'the mask changes the output');
});

test('checkpoint errors are typed and name the file or key', async (t) => {
  await t.throwsAsync(loadBackbone(join(fixtures, 'bad_global.pth'), { arch: TINY }), { instanceOf: CheckpointError, message: /bad_global\.pth.*(posix|system|global)/i });
  await t.throwsAsync(loadBackbone(join(fixtures, 'bad_opcode.pth'), { arch: TINY }), { instanceOf: CheckpointError, message: /bad_opcode\.pth/ });
  const dir = tempDir();
  const bytes = readFileSync(join(fixtures, 'tiny_vit.pth'));
  writeFileSync(join(dir, 'truncated.pth'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  await t.throwsAsync(loadBackbone(join(dir, 'truncated.pth'), { arch: TINY }), { instanceOf: CheckpointError, message: /truncated\.pth/ });
  const st = readFileSync(join(fixtures, 'tiny_vit.safetensors'));
  writeFileSync(join(dir, 'truncated.safetensors'), st.subarray(0, st.length - 100));
  await t.throwsAsync(loadBackbone(join(dir, 'truncated.safetensors'), { arch: TINY }), { instanceOf: CheckpointError, message: /truncated\.safetensors/ });
  writeFileSync(join(dir, 'garbage.pth'), 'definitely not a checkpoint');
  await t.throwsAsync(loadBackbone(join(dir, 'garbage.pth'), { arch: TINY }), { instanceOf: CheckpointError });
  await t.throwsAsync(loadBackbone(join(fixtures, 'tiny_vit.pth'), { arch: { ...TINY, embedDim: 48, numHeads: 2 } }), { instanceOf: CheckpointError, message: /embed|shape|48|32/ });
  await t.throwsAsync(loadBackbone(join(fixtures, 'tiny_vit.pth'), { arch: { ...TINY, depth: 5 } }), { instanceOf: CheckpointError, message: /blocks.*depth 5/ });
  await t.throwsAsync(loadBackbone(join(dir, 'missing.pth'), { arch: TINY }), { instanceOf: Error, message: /missing\.pth/ });
  await t.throwsAsync(loadBackbone(null, { arch: 'dino_vitx99' }), { instanceOf: InvalidArgumentError, message: /preset/ });
  await t.throwsAsync(loadBackbone(null, { arch: { ...TINY, bogus: 1 } as never }), { instanceOf: InvalidArgumentError, message: /bogus/ });
  t.pass(IoError.name);
});

test('preprocess is the exact test-time transform (Pillow oracle)', async (t) => {
  const rgb = await readNpy(join(fixtures, 'pre_rgb.npy'));
  const mask = await readNpy(join(fixtures, 'pre_mask.npy'));
  const wantImage = await readNpy(join(fixtures, 'pre_image_out.npy'));
  const wantMask = await readNpy(join(fixtures, 'pre_mask_out.npy'));
  const out = await preprocess([rgb], [mask]);
  t.deepEqual(out.images.shape, [1, 3, 224, 224]);
  t.true(maxAbsDiff(out.images.data, wantImage.data as Float32Array) <= 1e-6, 'image');
  t.true(maxAbsDiff(out.masks.data, wantMask.data as Float32Array) <= 1e-6, 'mask');
  const none = await preprocess([rgb], [null]);
  t.true(none.masks.data.every((v) => v === 1));
  await t.throwsAsync(preprocess([new Tensor('uint8', [4, 4])], [null]), { instanceOf: InvalidArgumentError, message: /crops\[0\]/ });
});

test('a random-init ViT-S/16 runs on the real test transform of an MTD-sized crop, non-square inputs too', async (t) => {
  const model = await loadBackbone(null, { arch: { preset: 'dino_vits16', depth: 2, maskLayers: 1 }, seed: 1 });
  t.is(model.config.embedDim, 384);
  const crop = new Tensor('uint8', [120, 90, 3], new Uint8Array(120 * 90 * 3).map((_, i) => (i * 31) % 256));
  const mask = new Tensor('uint8', [120, 90], new Uint8Array(120 * 90).map((_, i) => (i % 90 > 40 ? 255 : 0)));
  const { images, masks } = await preprocess([crop, crop], [mask, null]);
  const y = await model.embed(images, masks);
  t.deepEqual(y.shape, [2, 384]);
  t.true(y.data.every(Number.isFinite));
  const wide = await model.embed(new Tensor('float32', [1, 3, 224, 320]));
  t.deepEqual(wide.shape, [1, 384]);
});

test('embed CLI contract', async (t) => {
  const dir = tempDir();
  const x = join(dir, 'x.npy');
  const m = join(dir, 'm.npy');
  await writeNpy(x, await readNpy(join(fixtures, 'case_rect_b3_x.npy')));
  await writeNpy(m, await readNpy(join(fixtures, 'case_rect_b3_mask.npy')));
  const out = join(dir, 'y.npy');
  const arch = JSON.stringify(TINY);
  const r = cli(['embed', '--checkpoint', join(fixtures, 'tiny_vit.safetensors'), '--arch', arch, '--images', x, '--masks', m, '--out', out]);
  t.is(r.status, 0, r.stderr);
  const y = await readNpy(out);
  const want = await readNpy(join(fixtures, 'case_rect_b3_out.npy'));
  t.is(y.dtype, 'float32');
  t.deepEqual(y.shape, [3, 32]);
  t.true(maxAbsDiff(y.data as Float32Array, want.data as Float32Array) <= 1e-4);
  const bad = cli(['embed', '--checkpoint', join(fixtures, 'bad_global.pth'), '--arch', arch, '--images', x, '--masks', m, '--out', join(dir, 'z.npy')]);
  t.is(bad.status, 4, bad.stderr);
  t.regex(bad.stderr, /ERR_CHECKPOINT/);
});

test('embedCrops equals preprocess + embed bit for bit (same batches), and reports progress per batch', async (t) => {
  const model = await loadBackbone(join(fixtures, 'tiny_vit.safetensors'), { arch: TINY });
  const random = prng(7);
  const crops = Array.from({ length: 11 }, (_, i) => {
    const h = 20 + i * 7, w = 90 - i * 5;
    const image = new Tensor('uint8', [h, w, 3], new Uint8Array(h * w * 3).map(() => Math.floor(random() * 256)));
    const mask = new Tensor('uint8', [h, w], new Uint8Array(h * w).map((_, j) => ((j % w) > w / 3 && random() > 0.2 ? 255 : 0)));
    return { image, mask };
  });
  const { images, masks } = await preprocess(crops.map((c) => c.image), crops.map((c) => c.mask), { threads: 2 });
  const want = await model.embed(images, masks, { threads: 2 });
  const progress: number[] = [];
  const got = await model.embedCrops(crops, { threads: 2, onProgress: (p) => progress.push(p.done) });
  t.deepEqual(got.shape, [11, 32]);
  t.deepEqual(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength));
  t.deepEqual(progress, [8, 11]);
  const small = await model.embedCrops(crops, { threads: 1, batchSize: 3 });
  const wantSmall = await model.embed(images, masks, { threads: 1, batchSize: 3 });
  t.deepEqual(Array.from(small.data), Array.from(wantSmall.data));
  await t.throwsAsync(model.embedCrops([]), { instanceOf: InvalidArgumentError, message: /non-empty/ });
  await t.throwsAsync(model.embedCrops([{ image: new Tensor('uint8', [4, 4]), mask: null }]), { instanceOf: InvalidArgumentError, message: /crops\[0\]\.image/ });
  await t.throwsAsync(model.embedCrops([{ image: crops[0]!.image, mask: crops[1]!.mask }]), { instanceOf: InvalidArgumentError, message: /crops\[0\]\.mask/ });
  model.dispose();
  await t.throwsAsync(model.embedCrops(crops), { instanceOf: InvalidArgumentError, message: /disposed/ });
});
