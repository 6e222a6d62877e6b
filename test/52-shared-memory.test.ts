// TypedArrays over a SharedArrayBuffer (issue 10, item 2): accepted and read in place like
// any other input (binding/napi_util.cc: tensorView takes the data pointer from the view);
// the caller's duty is not to write them while a job runs (README, "Promises"). Maps,
// images and model tensors give the same results as over an ordinary ArrayBuffer.
import test from 'ava';
import { binarize, extractRegions, generateSynthetic, loadBackbone, Tensor } from 'anomalyncd';

function shared<T extends Uint8Array | Float32Array | Float64Array>(a: T): T {
  const Ctor = a.constructor as new (b: SharedArrayBuffer, o: number, n: number) => T;
  // A non-zero byte offset too, so that the view's offset is honoured.
  const offset = 16;
  const sab = new SharedArrayBuffer(offset + a.byteLength);
  const view = new Ctor(sab, offset, a.length);
  view.set(a as never);
  return view;
}

test('maps over a SharedArrayBuffer (uint8, float32, float64) binarise as ordinary ones', async (t) => {
  const samples = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 48, seed: 4 });
  const maps = samples.map((s) => s.map);
  const plain = await binarize(maps, { threads: 1 });
  const viaShared = await binarize(maps.map((m) => new Tensor(m.dtype, m.shape, shared(m.data as Float32Array))), { threads: 1 });
  t.deepEqual(viaShared.maps.map((m) => [m.threshold, Array.from(m.binary!.data)]), plain.maps.map((m) => [m.threshold, Array.from(m.binary!.data)]));
  const u8 = maps.map((m) => new Tensor('uint8', m.shape, Uint8Array.from(m.data as Float32Array, (v) => Math.round(v * 255))));
  const u8Shared = await binarize(u8.map((m) => new Tensor('uint8', m.shape, shared(m.data))), { threads: 1, range: [0, 255] });
  const u8Plain = await binarize(u8, { threads: 1, range: [0, 255] });
  t.deepEqual(u8Shared.maps.map((m) => m.threshold), u8Plain.maps.map((m) => m.threshold));
  const f64 = maps.map((m) => new Tensor('float64', m.shape, Float64Array.from(m.data as Float32Array)));
  t.deepEqual(
    (await binarize(f64.map((m) => new Tensor('float64', m.shape, shared(m.data))), { threads: 1 })).maps.map((m) => m.threshold),
    (await binarize(f64, { threads: 1 })).maps.map((m) => m.threshold),
  );
});

test('images over a SharedArrayBuffer give the same crops', async (t) => {
  const samples = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 48, seed: 6 });
  const plain = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const viaShared = await extractRegions(
    samples.map((s) => new Tensor('uint8', s.image.shape, shared(s.image.data as Uint8Array))),
    samples.map((s) => new Tensor(s.map.dtype, s.map.shape, shared(s.map.data as Float32Array))),
    { threads: 1 },
  );
  const flat = (r: typeof plain) => r.items.flatMap((it) => it.crops.map((c) => [Array.from(c.image!.data), Array.from(c.mask!.data), c.score]));
  t.true(flat(plain).length > 0);
  t.deepEqual(flat(viaShared), flat(plain));
});

test('model tensors over a SharedArrayBuffer give the same features', async (t) => {
  const backbone = await loadBackbone(null, { arch: { patchSize: 8, embedDim: 16, depth: 1, numHeads: 2, maskLayers: 1, imageSize: 16 }, seed: 3 });
  const images = new Tensor('float32', [2, 3, 16, 16], new Float32Array(2 * 3 * 256).map((_, i) => Math.sin(i)));
  const masks = new Tensor('float32', [2, 1, 16, 16], new Float32Array(2 * 256).map((_, i) => (i % 3 ? 1 : 0)));
  const plain = await backbone.embed(images, masks, { threads: 1 });
  const viaShared = await backbone.embed(new Tensor('float32', images.shape, shared(images.data)), new Tensor('float32', masks.shape, shared(masks.data)), { threads: 1 });
  t.deepEqual(Array.from(viaShared.data), Array.from(plain.data));
  const crop = { image: new Tensor('uint8', [12, 10, 3], shared(new Uint8Array(360).map((_, i) => (i * 7) % 256))), mask: new Tensor('uint8', [12, 10], shared(new Uint8Array(120).fill(255))) };
  const copy = { image: new Tensor('uint8', [12, 10, 3], Uint8Array.from(crop.image.data)), mask: new Tensor('uint8', [12, 10], Uint8Array.from(crop.mask.data)) };
  t.deepEqual(Array.from((await backbone.embedCrops([crop], { threads: 1 })).data), Array.from((await backbone.embedCrops([copy], { threads: 1 })).data));
  backbone.dispose();
});
