import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { extractRegions, generateSynthetic, InvalidArgumentError, Tensor } from 'anomalyncd';
import { testingAddon } from '../ts/native/loader.js';
import { mtdDir, python, repoRoot } from './helpers.js';

interface Goldens {
  bicubic: { in: [number, number]; out: [number, number]; src: string; dst: string }[];
  merge: { name: string; S: number; boxes: string[][]; merged: string[][] }[];
}
const goldens = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'crop_goldens.json'), 'utf8')) as Goldens;

function floatsFromHex(hex: string): Float32Array {
  const out = new Float32Array(hex.length / 8);
  const view = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < out.length; i++) {
    view.setUint32(0, parseInt(hex.slice(8 * i, 8 * i + 8), 16));
    out[i] = view.getFloat32(0);
  }
  return out;
}

test('METHOD.md §3.2 merge examples', (t) => {
  const { mergeBoxes } = testingAddon().kernels;
  t.deepEqual(mergeBoxes([[0, 0, 100, 100], [105, 0, 205, 100], [210, 0, 310, 100]], 1000), [[0, -105, 310, 205]]);
  t.deepEqual(mergeBoxes([[0, 0, 100, 100], [105, 0, 205, 100], [210, 0, 310, 100], [315, 0, 415, 100]], 1000), [
    [0, -105, 310, 205],
    [105, -105, 415, 205],
  ]);
  t.deepEqual(mergeBoxes([[0, 0, 100, 100], [109, 0, 209, 100]], 900), [[0, 0, 100, 100], [109, 0, 209, 100]]);
  t.deepEqual(mergeBoxes([[0, 0, 100, 100], [108, 0, 208, 100]], 900), [[0, -54, 208, 154]]);
  t.deepEqual(mergeBoxes([[0, 0, 100, 100], [105, 105, 205, 205]], 1000), [[0, 0, 205, 205]]);
  t.deepEqual(mergeBoxes([[300, 300, 400, 400], [0, 0, 100, 100], [105, 0, 205, 100]], 1000), [
    [0, -52.5, 205, 152.5],
    [300, 300, 400, 400],
  ]);
});

test('box merging matches the reference on every golden case', (t) => {
  const { mergeBoxes } = testingAddon().kernels;
  t.true(goldens.merge.length >= 30);
  for (const c of goldens.merge) {
    const got = mergeBoxes(c.boxes.map((b) => b.map(Number)), c.S);
    t.deepEqual(got, c.merged.map((b) => b.map(Number)), c.name);
  }
});

test('Pillow float bicubic resize matches Pillow bit for bit', (t) => {
  const { resizeBicubicF32 } = testingAddon().kernels;
  for (const c of goldens.bicubic) {
    const src = new Tensor('float32', c.in, floatsFromHex(c.src));
    const got = resizeBicubicF32(src, c.out[0], c.out[1]);
    const want = floatsFromHex(c.dst);
    t.deepEqual(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer), `${c.in} -> ${c.out}`);
  }
});

test('METHOD.md §2.7 cropping example: boxes, crop sizes, mask areas, scores', async (t) => {
  const map = (bg: number, rects: [number, number, number, number, number][]) => {
    const d = new Uint8Array(1600).fill(bg);
    for (const [r0, r1, c0, c1, v] of rects) for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) d[r * 40 + c] = v;
    return new Tensor('uint8', [40, 40], d);
  };
  const maps = [map(10, [[5, 16, 5, 16, 200], [25, 34, 22, 31, 120]]), map(5, [[10, 29, 10, 29, 250], [17, 22, 17, 22, 255]]), map(40, [])];
  const images = maps.map(() => new Tensor('uint8', [80, 80, 3]));
  const r = await extractRegions(images, maps, { threads: 2 });
  t.deepEqual(r.items.map((i) => i.boxes), [[[15, 15, 31, 31]], [[25, 25, 57, 57]], [[0, 0, 80, 80]]]);
  t.deepEqual(r.items.map((i) => i.crops[0]!.image!.shape), [[16, 16, 3], [32, 32, 3], [80, 80, 3]]);
  t.deepEqual(r.items.map((i) => i.crops[0]!.maskArea), [196, 900, 0]);
  t.is(r.items[0]!.crops[0]!.score.toFixed(6), '0.744186');
  t.is(r.items[1]!.crops[0]!.score.toFixed(6), '1.003385');
  t.is(r.items[2]!.crops[0]!.score, 0);
  const mask = r.items[0]!.crops[0]!.mask!;
  t.true(Array.from(mask.data).every((v) => v === 0 || v === 255));
});

test('crops are the image pixels inside the box, zero outside; gray inputs become RGB', async (t) => {
  const h = 60, w = 90;
  const rgb = new Uint8Array(h * w * 3).map((_, i) => (i * 7) % 251);
  const gray = new Uint8Array(h * w).map((_, i) => (i * 13) % 253);
  const m = new Uint8Array(30 * 45);
  for (let r = 0; r < 6; r++) for (let c = 0; c < 8; c++) m[(1 + r) * 45 + 37 + c] = 255; // near the right edge
  const other = new Uint8Array(30 * 45).fill(100);
  const r = await extractRegions(
    [new Tensor('uint8', [h, w, 3], rgb), new Tensor('uint8', [h, w], gray)],
    [new Tensor('uint8', [30, 45], m), new Tensor('uint8', [30, 45], other)],
  );
  const item = r.items[0]!;
  t.is(item.crops.length, 1);
  const [left, top, right, bottom] = item.boxes[0]!;
  const crop = item.crops[0]!.image!;
  t.deepEqual(crop.shape, [Math.round(bottom) - Math.round(top), Math.round(right) - Math.round(left), 3]);
  for (let y = 0; y < crop.shape[0]!; y++)
    for (let x = 0; x < crop.shape[1]!; x++)
      for (let c = 0; c < 3; c++) {
        const sy = Math.round(top) + y, sx = Math.round(left) + x;
        const want = sy >= 0 && sy < h && sx >= 0 && sx < w ? rgb[(sy * w + sx) * 3 + c] : 0;
        if (crop.data[(y * crop.shape[1]! + x) * 3 + c] !== want) return t.fail(`pixel ${y},${x},${c}`);
      }
  const grayCrop = r.items[1]!.crops[0]!.image!;
  t.deepEqual(grayCrop.shape, [h, w, 3]);
  t.is(grayCrop.data[3 * 5 + 1], gray[5]);
  t.is(grayCrop.data[3 * 5 + 2], gray[5]);
});

test('MTD JPEGs decode as the reference decodes them (OpenCV, T30)', async (t) => {
  const dir = join(mtdDir, 'MT_Crack', 'Imgs');
  const jpgs = readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort().slice(0, 3).map((f) => join(dir, f));
  const maps = jpgs.map(() => new Tensor('uint8', [16, 16]));
  const r = await extractRegions(jpgs, maps);
  // Empty maps: one whole-image crop per image, i.e. the decoded image itself.
  const sums = python(
    `import cv2, sys
for p in sys.argv[1:]:
    im = cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
    print(im.shape[0], im.shape[1], int(im.astype('int64').sum()), int((im.astype('int64') * (1 + (im.sum(axis=2, keepdims=True) % 7))).sum()))`,
    jpgs,
  )
    .trim()
    .split('\n');
  r.items.forEach((item, i) => {
    const img = item.crops[0]!.image!;
    let sum = 0, weighted = 0;
    for (let p = 0; p < img.data.length; p += 3) {
      const s = img.data[p]! + img.data[p + 1]! + img.data[p + 2]!;
      sum += s;
      weighted += s * (1 + (s % 7));
    }
    t.is(`${img.shape[0]} ${img.shape[1]} ${sum} ${weighted}`, sums[i] ?? "");
  });
});

test('names and cropDir options are validated', async (t) => {
  const img = new Tensor('uint8', [8, 8, 3]);
  const map = new Tensor('uint8', [8, 8]);
  await t.throwsAsync(extractRegions([img], [map], { names: ['a/b'] }), { instanceOf: InvalidArgumentError, message: /names/ });
  await t.throwsAsync(extractRegions([img], [map], { padding: -1 }), { instanceOf: InvalidArgumentError, message: /padding/ });
});

test('a warning when MEBin finds no region in most maps (a range without defect-free maps), none with the category range', async (t) => {
  const all = generateSynthetic({ types: 3, perType: 4, good: 4, size: 64, mapSize: 32, seed: 5 });
  const defects = all.filter((s) => s.label !== 'good');
  const alone = await extractRegions(defects.map((s) => s.image), defects.map((s) => s.map), { threads: 1, returnPixels: false });
  const fellBack = alone.items.filter((it) => it.crops.every((c) => c.maskArea === 0)).length;
  t.true(fellBack * 2 > defects.length, `${fellBack} of ${defects.length} fell back`);
  t.true(alone.warnings.some((w) => w.includes(`no anomaly region in ${fellBack} of ${defects.length} maps`) && /good images/.test(w)), alone.warnings.join('\n'));
  // The category's range (good images included): regions are found and nothing is said.
  const { searchRange } = await extractRegions(all.map((s) => s.image), all.map((s) => s.map), { threads: 1, returnPixels: false });
  t.true(searchRange[0] < alone.searchRange[0]);
  const withRange = await extractRegions(defects.map((s) => s.image), defects.map((s) => s.map), { threads: 1, returnPixels: false, range: searchRange });
  t.true(withRange.items.filter((it) => it.crops.every((c) => c.maskArea === 0)).length * 2 <= defects.length);
  t.false(withRange.warnings.some((w) => /no anomaly region/.test(w)));
});

test('extractRegions refuses an unknown option and names the closest known one', async (t) => {
  const s = generateSynthetic({ types: 1, perType: 1, good: 0, size: 32, mapSize: 16, seed: 1 });
  await t.throwsAsync(extractRegions([s[0]!.image], [s[0]!.map], { maskLevl: 100 } as never), { instanceOf: InvalidArgumentError, message: /unknown option 'maskLevl' \(did you mean 'maskLevel'\?\)/ });
});
