// precision 'bf16' (issue 8): bfloat16 autocast around the ViT, on the CPU here. Embeddings
// stay within 2e-2 of fp32 on a tiny ViT, and a bf16 training run works.
import test from 'ava';
import { extractRegions, fit, generateSynthetic, InvalidArgumentError, loadBackbone, Tensor } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { prng } from './helpers.js';

const TINY = { patchSize: 8, embedDim: 64, depth: 3, numHeads: 4, maskLayers: 2, imageSize: 32 };

function inputs(n: number, side: number, seed: number): { x: Tensor<'float32'>; m: Tensor<'float32'> } {
  const r = prng(seed);
  const x = new Float32Array(n * 3 * side * side).map(() => (r() - 0.5) * 4);
  // blocky masks: about half of the patches anomalous
  const m = new Float32Array(n * side * side);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < side; y++) for (let xx = 0; xx < side; xx++) m[i * side * side + y * side + xx] = (Math.floor(y / 8) + Math.floor(xx / 8) + i) % 2;
  return { x: new Tensor('float32', [n, 3, side, side], x), m: new Tensor('float32', [n, 1, side, side], m) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

test('bf16 embeddings are within 2e-2 of fp32 (and really computed in bf16)', async (t) => {
  const b = await loadBackbone(null, { arch: TINY, seed: 7, device: 'cpu' });
  const { x, m } = inputs(4, 32, 1);
  const fp32 = await b.embed(x, m, { threads: 1 });
  const bf16 = await b.embed(x, m, { threads: 1, precision: 'bf16' });
  t.deepEqual(bf16.shape, fp32.shape);
  const d = maxAbsDiff(fp32.data, bf16.data);
  t.true(d <= 2e-2, `max |bf16 - fp32| = ${d}`);
  // bf16 rounding must show: identical outputs would mean autocast did nothing
  t.true(d > 0, 'bf16 equals fp32 bit for bit');
  // fp32 again: the autocast state was restored after the bf16 call
  t.deepEqual((await b.embed(x, m, { threads: 1 })).data, fp32.data);
  b.dispose();
});

test("a backbone loaded with precision 'bf16' embeds in bf16 by default; embedCrops too", async (t) => {
  const b32 = await loadBackbone(null, { arch: TINY, seed: 7, device: 'cpu' });
  const b16 = await loadBackbone(null, { arch: TINY, seed: 7, device: 'cpu', precision: 'bf16' });
  t.is(b16.precision, 'bf16');
  t.is(b16.info.precision, 'bf16');
  const { x, m } = inputs(2, 32, 2);
  const a = await b16.embed(x, m, { threads: 1 });
  t.deepEqual(a.data, (await b32.embed(x, m, { threads: 1, precision: 'bf16' })).data);
  t.deepEqual((await b16.embed(x, m, { threads: 1, precision: 'fp32' })).data, (await b32.embed(x, m, { threads: 1 })).data);
  // On a CPU without bf16 dot products the loader says so (once per process).
  if (!modelAddon().torch!.cpuBf16Dot) t.true(b16.info.notes.some((n) => /bf16/.test(n)));
  else t.false(b16.info.notes.some((n) => /bf16/.test(n)));
  const side = 48;
  const crop = { image: new Tensor('uint8', [side, side, 3], new Uint8Array(side * side * 3).map((_, i) => (i * 37) % 256)), mask: null };
  const c32 = await b32.embedCrops([crop, crop], { threads: 1 });
  const c16 = await b16.embedCrops([crop, crop], { threads: 1 });
  t.true(maxAbsDiff(c32.data, c16.data) <= 2e-2);
  b32.dispose();
  b16.dispose();
});

test('precision is validated', async (t) => {
  await t.throwsAsync(loadBackbone(null, { arch: TINY, precision: 'fp16' as never }), { instanceOf: InvalidArgumentError, message: /'precision'/ });
  const b = await loadBackbone(null, { arch: TINY });
  const { x } = inputs(1, 32, 3);
  await t.throwsAsync(b.embed(x, undefined, { precision: 'int8' as never }), { instanceOf: InvalidArgumentError, message: /'precision'/ });
  b.dispose();
});

test('a bf16 fit of a tiny model runs, with finite losses, and predicts', async (t) => {
  const samples = generateSynthetic({ perType: 2, good: 0, size: 96, mapSize: 64, seed: 8 });
  const { items } = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const unlabelled = items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  const options = { k: 3, arch: { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 }, epochs: 2, batchSize: 4, seed: 3, threads: 1, nHead: 2, gradFromBlock: 1, projHidden: 32, projOut: 16, device: 'cpu' as const };
  const f32 = await fit({ unlabelled }, options);
  const b16 = await fit({ unlabelled }, { ...options, precision: 'bf16' });
  t.is(b16.epochsDone, 2);
  for (const h of b16.history) t.true(Number.isFinite(h.losses.total), `epoch ${h.epoch}: ${h.losses.total}`);
  // the same run in bf16 differs from fp32 (it did run in bf16), but not by much
  const l32 = f32.history[0]!.losses.total, l16 = b16.history[0]!.losses.total;
  t.not(l16, l32);
  t.true(Math.abs(l16 - l32) < 0.05 * Math.abs(l32) + 0.05, `${l16} vs ${l32}`);
  const p = await b16.predict(unlabelled.slice(0, 3), { threads: 1, precision: 'bf16' });
  for (const row of p.probabilities) t.true(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-3);
  f32.dispose();
  b16.dispose();
});
