// Size limits instead of out-of-memory (issue 10, item 4): cpp/common/limits.h checks
// declared sizes (image headers, Tensor shapes, crop counts, checkpoint tensors) before
// anything is allocated; setLimits() raises or lowers them process-wide.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BadInputError,
  binarize,
  DEFAULT_LIMITS,
  getLimits,
  InvalidArgumentError,
  LimitError,
  loadBackbone,
  setLimits,
  Tensor,
} from 'anomalyncd';
import { pngChunk } from '../ts/io/png.js';
import { tempDir, writeDinoCheckpoint } from './helpers.js';

/** A tiny, complete-looking PNG (IHDR, an empty IDAT, IEND) declaring width x height 8-bit grey. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.alloc(0)), pngChunk('IEND', Buffer.alloc(0))]);
}

test.afterEach.always(() => {
  setLimits(DEFAULT_LIMITS);
});

test.serial('defaults, and setLimits validates what it is given', (t) => {
  t.deepEqual(getLimits(), { ...DEFAULT_LIMITS });
  t.is(DEFAULT_LIMITS.maxPixels, 2 ** 27);
  t.throws(() => setLimits({ maxPixels: 0 }), { instanceOf: InvalidArgumentError, message: /maxPixels/ });
  t.throws(() => setLimits({ maxPixels: 2 ** 31 }), { instanceOf: InvalidArgumentError, message: /\[1, 1073741824\]/ });
  t.throws(() => setLimits({ maxCrops: 1.5 }), { instanceOf: InvalidArgumentError });
  t.throws(() => setLimits({ maxBytes: 3 } as never), { instanceOf: InvalidArgumentError, message: /Unknown limit 'maxBytes'/ });
  t.throws(() => setLimits(null as never), { instanceOf: InvalidArgumentError });
  const next = setLimits({ maxCrops: 77 });
  t.is(next.maxCrops, 77);
  t.is(next.maxPixels, DEFAULT_LIMITS.maxPixels, 'the others keep their values');
  t.deepEqual(getLimits(), next);
});

test.serial('a 100k x 100k PNG header gets ERR_LIMIT from the header, before decoding; raising the limit changes the answer', async (t) => {
  const dir = tempDir();
  const huge = join(dir, 'huge.png');
  writeFileSync(huge, pngHeaderOnly(100_000, 100_000));
  const e = await t.throwsAsync(binarize([huge], { threads: 1 }), { instanceOf: LimitError });
  t.is(e?.code, 'ERR_LIMIT');
  t.regex(e!.message, /huge\.png'?: 100000 x 100000 = 10000000000 pixels exceeds the limit maxPixels = 134217728/);
  // Even at the ceiling (2^30 pixels), still refused from the header.
  setLimits({ maxPixels: 2 ** 30 });
  await t.throwsAsync(binarize([huge], { threads: 1 }), { instanceOf: LimitError });

  // 12k x 12k (144 Mpx) is over the default; with maxPixels = 2^28 the header passes and
  // the (empty) image data is what is refused: a different answer.
  setLimits(DEFAULT_LIMITS);
  const big = join(dir, 'big.png');
  writeFileSync(big, pngHeaderOnly(12_000, 12_000));
  await t.throwsAsync(binarize([big], { threads: 1 }), { instanceOf: LimitError, message: /maxPixels/ });
  setLimits({ maxPixels: 2 ** 28 });
  await t.throwsAsync(binarize([big], { threads: 1 }), { instanceOf: BadInputError });
});

test.serial('an 8k x 8k map is processed with the default limits', async (t) => {
  const side = 8192;
  const data = new Uint8Array(side * side);
  // Two cone-shaped anomalies (peak 240, edge 40) on a zero background.
  for (const [cy, cx] of [[2000, 2000], [6000, 5000]] as const) {
    const r = 400;
    for (let y = cy - r; y < cy + r; y++)
      for (let x = cx - r; x < cx + r; x++) {
        const d = Math.hypot(y - cy, x - cx) / r;
        if (d < 1) data[y * side + x] = Math.round(40 + 200 * (1 - d));
      }
  }
  const started = Date.now();
  const r = await binarize([new Tensor('uint8', [side, side], data)], { threads: 2, range: [0, 255] });
  t.log(`8192 x 8192 binarize: ${Date.now() - started} ms`);
  const bin = r.maps[0]!.binary!;
  t.deepEqual(bin.shape, [side, side]);
  t.is(bin.data[2000 * side + 2000], 255);
  t.is(bin.data[6000 * side + 5000], 255);
  t.is(bin.data[100 * side + 100], 0);
  t.true(r.maps[0]!.foreground > 1000);
});

test.serial('in-memory maps, tensor elements and crop counts are checked against the current limits', async (t) => {
  const map = new Tensor('uint8', [40, 40], new Uint8Array(1600).map((_, i) => (i % 40 > 20 ? 200 : 10)));
  const ok = await binarize([map], { threads: 1 });
  setLimits({ maxPixels: 1000 });
  await t.throwsAsync(binarize([map], { threads: 1 }), { instanceOf: LimitError, message: /maps\[0\]: 40 x 40 = 1600 pixels exceeds the limit maxPixels = 1000/ });
  setLimits({ maxPixels: DEFAULT_LIMITS.maxPixels, maxTensorElements: 1000 });
  const floats = new Tensor('float32', [40, 40], Float32Array.from(map.data));
  await t.throwsAsync(binarize([floats], { threads: 1 }), { instanceOf: LimitError, message: /1600 elements exceed the limit maxTensorElements = 1000/ });
  setLimits(DEFAULT_LIMITS);
  t.deepEqual((await binarize([map], { threads: 1 })).maps[0]!.binary!.data, ok.maps[0]!.binary!.data);

  // The model addon (loaded after the limit was set) starts from the current values.
  setLimits({ maxCrops: 2 });
  const backbone = await loadBackbone(null, { arch: { patchSize: 8, embedDim: 16, depth: 1, numHeads: 2, maskLayers: 1, imageSize: 32 }, seed: 1 });
  const crop = { image: new Tensor('uint8', [8, 8, 3], new Uint8Array(192).fill(90)), mask: null };
  await t.throwsAsync(backbone.embedCrops([crop, crop, crop], { threads: 1 }), { instanceOf: LimitError, message: /3 crops exceed the limit maxCrops = 2/ });
  t.is((await backbone.embedCrops([crop, crop], { threads: 1 })).shape[0], 2);
  setLimits({ maxCrops: 3 });
  t.is((await backbone.embedCrops([crop, crop, crop], { threads: 1 })).shape[0], 3);
  backbone.dispose();
});

test.serial('checkpoint tensors are checked against maxTensorElements as declared', async (t) => {
  const dir = tempDir();
  const arch = { patchSize: 8, embedDim: 16, depth: 1, numHeads: 2, maskLayers: 1 };
  const path = join(dir, 'tiny.pth');
  writeDinoCheckpoint(path, { dim: 16, depth: 1, patch: 8, image: 32 });
  const b = await loadBackbone(path, { arch });
  b.dispose();
  // The largest tensor of this ViT holds 16 * 64 = 1024 elements (fc1/fc2).
  setLimits({ maxTensorElements: 500 });
  await t.throwsAsync(loadBackbone(path, { arch }), { instanceOf: LimitError, message: /tiny\.pth.*exceed the limit maxTensorElements = 500/ });
});
