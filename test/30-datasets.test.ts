// Dataset loaders (MVTec layout, MTD as published, manifests) and the
// TypeScript PNG decoder, checked against the real MTD data and OpenCV.
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  BadInputError,
  binarize,
  InvalidArgumentError,
  IoError,
  loadDataset,
  Tensor,
  writeNpy,
  type Dataset,
} from 'anomalyncd';
import { readImageSize } from '../ts/io/datasets.js';
import { pngChunk } from '../ts/io/png.js';
import { decodeGrayPng, readGrayPng } from '../ts/io/png-decode.js';
import { MTD_CLASSES, mtdDir, prng, python, tempDir, writePng } from './helpers.js';

const MTD_COUNTS = [115, 85, 57, 32, 191, 103];
/** Defect images whose published mask is all zero. */
const EMPTY_MASKS = ['MT_Uneven/exp3_num_45042', 'MT_Uneven/exp4_num_124690', 'MT_Uneven/exp4_num_352527', 'MT_Uneven/exp4_num_45057'];

const counts = (ds: Dataset) => {
  const c = new Map<string, number>();
  for (const it of ds.items) c.set(it.label ?? '?', (c.get(it.label ?? '?') ?? 0) + 1);
  return c;
};
const isTensor = (m: unknown): m is Tensor => m instanceof Tensor;

// ---------------------------------------------------------------------------
// Real MTD

test('MTD: 583 evaluated images, per-class counts, no training-list image', async (t) => {
  const ds = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true, binarizeGroundTruth: false });
  t.is(ds.kind, 'mtd');
  t.is(ds.items.length, 583);
  t.deepEqual(ds.classes, MTD_CLASSES);
  t.deepEqual([...counts(ds).entries()], MTD_CLASSES.map((c, i) => [c, MTD_COUNTS[i]]));
  const train = new Set(readFileSync(join(mtdDir, 'train_filenames.txt'), 'utf8').split(/\s+/).filter(Boolean));
  t.is(train.size, 761);
  t.false(ds.items.some((it) => train.has(basename(it.image))));
  // Every MT_Free image not in the list is there.
  const freeTest = readdirSync(join(mtdDir, 'MT_Free', 'Imgs')).filter((f) => f.endsWith('.jpg') && !train.has(f)).sort();
  t.deepEqual(ds.items.filter((it) => it.label === 'MT_Free').map((it) => basename(it.image)), freeTest);
  t.is(new Set(ds.items.map((it) => it.name)).size, 583);
  t.is(ds.items[0]!.name, `MT_Blowhole/${basename(ds.items[0]!.image, '.jpg')}`);
  // Without thresholding the masks come back as the same-stem .png paths.
  for (const it of ds.items) t.is(it.map, it.image.replace(/\.jpg$/, '.png'));
  t.deepEqual(ds.warnings, []);
  // trainList: false keeps all 952 defect-free images.
  const all = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true, binarizeGroundTruth: false, trainList: false });
  t.is(all.items.length, 583 - 191 + 952);
});

test('MTD: most defect masks are anti-aliased; GT-as-maps thresholds them to {0,255}, MT_Free all zero', async (t) => {
  const raw = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true, binarizeGroundTruth: false });
  let grey = 0;
  for (const it of raw.items) {
    if (it.label === 'MT_Free') continue;
    const m = await readGrayPng(it.map as string);
    if (m.data.some((v) => v !== 0 && v !== 255)) grey++;
  }
  t.is(grey, 388);

  const ds = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true });
  t.is(ds.items.length, 583);
  // Four MT_Uneven masks are empty as published (all zero): reported, not hidden.
  t.is(ds.warnings.length, 1);
  t.regex(ds.warnings[0]!, /^4 ground-truth mask\(s\) of defect images have no pixel >= 128/);
  for (const n of EMPTY_MASKS) t.true(ds.warnings[0]!.includes(`${n.split('/')[1]}.png`), n);
  const sampled: { path: string; n255: number; h: number; w: number }[] = [];
  for (const [i, it] of ds.items.entries()) {
    t.true(isTensor(it.map));
    const m = it.map as Tensor<'uint8'>;
    t.is(m.dtype, 'uint8');
    let n255 = 0;
    let other = 0;
    for (const v of m.data) {
      if (v === 255) n255++;
      else if (v !== 0) other++;
    }
    t.is(other, 0, it.name);
    if (it.label === 'MT_Free' || EMPTY_MASKS.includes(it.name)) t.is(n255, 0, it.name);
    else t.true(n255 > 0, it.name);
    if (i % 29 === 0) sampled.push({ path: it.image, n255, h: m.shape[0]!, w: m.shape[1]! });
  }
  // Thresholded counts and sizes agree with OpenCV: (mask >= 128), image shape.
  const listFile = join(tempDir(), 'list.txt');
  writeFileSync(listFile, sampled.map((s) => s.path).join('\n'));
  const out = python(
    `import cv2, sys
for p in open(sys.argv[1]).read().split('\\n'):
    m = cv2.imread(p[:-4] + '.png', cv2.IMREAD_GRAYSCALE); im = cv2.imread(p, cv2.IMREAD_COLOR)
    print(int((m >= 128).sum()), im.shape[0], im.shape[1])`,
    [listFile],
  );
  t.deepEqual(out.trim().split('\n'), sampled.map((s) => `${s.n255} ${s.h} ${s.w}`));
  // A different threshold changes the foreground.
  const low = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true, binarizeGroundTruth: 1 });
  const fg = (d: Dataset) => d.items.reduce((s, it) => s + (it.map as Tensor<'uint8'>).data.reduce((a, v) => a + (v ? 1 : 0), 0), 0);
  t.true(fg(low) > fg(ds));
});

test('MTD: GT-as-maps feed MEBin as METHOD.md §9 describes (range [0, 255], threshold 3, good images fall back)', async (t) => {
  const ds = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true });
  const sub = ds.items.filter((_, i) => i % 10 === 0);
  const r = await binarize(sub.map((it) => it.map), { returnBinary: false });
  t.deepEqual(r.searchRange, [0, 255]);
  sub.forEach((it, i) => {
    const m = r.maps[i]!;
    if (it.label === 'MT_Free') t.deepEqual([m.threshold, m.count], [255, 0], it.name);
    // Defect masks: threshold 3 unless erosion removes every (tiny) region.
    else t.true(m.threshold === 3 || (m.threshold === 255 && m.count === 0), it.name);
  });
  t.true(sub.filter((it, i) => it.label !== 'MT_Free' && r.maps[i]!.threshold === 3).length >= 20);
});

test('MTD: maps by stem from <maps>/<MT_type>/, missing and ambiguous maps are typed errors', async (t) => {
  const dir = tempDir();
  const root = join(dir, 'mtd');
  const maps = join(dir, 'maps');
  // A two-class miniature of the layout (one image per class plus one training image).
  const jpg = readFileSync(join(mtdDir, 'MT_Crack', 'Imgs', readdirSync(join(mtdDir, 'MT_Crack', 'Imgs')).find((f) => f.endsWith('.jpg'))!));
  for (const [cls, stems] of [['MT_Crack', ['c1', 'c2']], ['MT_Free', ['f1', 'f2']]] as const) {
    mkdirSync(join(root, cls, 'Imgs'), { recursive: true });
    mkdirSync(join(maps, cls), { recursive: true });
    for (const s of stems) writeFileSync(join(root, cls, 'Imgs', `${s}.jpg`), jpg);
  }
  writeFileSync(join(root, 'train_filenames.txt'), 'f1.jpg\n');
  writePng(join(maps, 'MT_Crack', 'c2.png'), 3, 2, [1, 2, 3, 4, 5, 6]);
  await writeNpy(join(maps, 'MT_Crack', 'c1.npy'), new Tensor('float32', [2, 2], Float32Array.from([0, 0.5, 1, 2])));
  writePng(join(maps, 'MT_Free', 'f2.png'), 2, 2, [0, 0, 0, 0]);
  writePng(join(maps, 'MT_Free', 'f1.png'), 2, 2, [0, 0, 0, 0]); // a training image's map: unused
  const ds = await loadDataset({ kind: 'mtd', root, maps });
  t.deepEqual(ds.items.map((it) => it.name), ['MT_Crack/c1', 'MT_Crack/c2', 'MT_Free/f2']);
  t.deepEqual(ds.classes, ['MT_Crack', 'MT_Free']);
  const m0 = ds.items[0]!.map as Tensor;
  t.is(m0.dtype, 'float32');
  t.deepEqual([...m0.shape], [2, 2]);
  t.is(ds.items[1]!.map, join(maps, 'MT_Crack', 'c2.png'));
  t.true(ds.warnings.some((w) => w.includes('float')));
  // Ambiguous: two maps for one stem.
  writePng(join(maps, 'MT_Crack', 'c1.png'), 2, 2, [0, 0, 0, 0]);
  const amb = await t.throwsAsync(loadDataset({ kind: 'mtd', root, maps }), { instanceOf: BadInputError });
  t.regex(amb!.message, /c1\.npy.*c1\.png|c1\.png.*c1\.npy/);
  // Missing: a map folder without the image's stem.
  const maps2 = join(dir, 'maps2');
  mkdirSync(join(maps2, 'MT_Crack'), { recursive: true });
  mkdirSync(join(maps2, 'MT_Free'), { recursive: true });
  writePng(join(maps2, 'MT_Crack', 'c1.png'), 2, 2, [0, 0, 0, 0]);
  const miss = await t.throwsAsync(loadDataset({ kind: 'mtd', root, maps: maps2 }), { instanceOf: BadInputError });
  t.true(miss!.message.includes(join(maps2, 'MT_Crack', 'c2')));
  // Missing training list.
  await t.throwsAsync(loadDataset({ kind: 'mtd', root, maps, trainList: join(dir, 'nope.txt') }), { instanceOf: IoError, message: /nope\.txt/ });
});

// ---------------------------------------------------------------------------
// Synthetic MVTec

/** root/cat/test/<type>/NNN.png (+ ground_truth), images of per-type sizes; returns the root. */
function mvtecTree(dir: string): string {
  const root = join(dir, 'mvtec');
  const spec: Record<string, { n: number; w: number; h: number }> = {
    broken: { n: 3, w: 9, h: 7 },
    good: { n: 2, w: 17, h: 11 },
    scratch: { n: 2, w: 5, h: 6 },
    combined: { n: 2, w: 4, h: 4 },
  };
  for (const [type, { n, w, h }] of Object.entries(spec)) {
    mkdirSync(join(root, 'cat', 'test', type), { recursive: true });
    if (type !== 'good') mkdirSync(join(root, 'cat', 'ground_truth', type), { recursive: true });
    for (let i = 0; i < n; i++) {
      const stem = String(i).padStart(3, '0');
      writePng(join(root, 'cat', 'test', type, `${stem}.png`), w, h, new Array(w * h * 3).fill(i * 10), 2);
      if (type !== 'good')
        // An anti-aliased mask: 0, 100 (below 128), 200 (above), 255.
        writePng(join(root, 'cat', 'ground_truth', type, `${stem}_mask.png`), w, h, Array.from({ length: w * h }, (_, k) => [0, 100, 200, 255][k % 4]!));
    }
  }
  return root;
}

/** maps/cat/<type>/<name> with names sorted differently from the images' names. */
function mapsTree(dir: string, name: string, counts: Record<string, number>): string {
  const maps = join(dir, name);
  for (const [type, n] of Object.entries(counts)) {
    mkdirSync(join(maps, 'cat', type), { recursive: true });
    // Written in reverse name order; map k (sorted) holds value k+1.
    const names = Array.from({ length: n }, (_, k) => `${String.fromCharCode(97 + k)}_${String(n - k).padStart(3, '0')}_map.png`);
    names.forEach((f, k) => writePng(join(maps, 'cat', type, f), 4, 3, new Array(12).fill(k + 1)));
  }
  return maps;
}

test('MVTec: types from the map folders minus combined, pairing by sorted position', async (t) => {
  const dir = tempDir();
  const root = mvtecTree(dir);
  mkdirSync(join(root, 'cat', 'test', 'extra'), { recursive: true }); // an image type without maps
  writePng(join(root, 'cat', 'test', 'extra', '000.png'), 2, 2, [0, 0, 0, 0]);
  const maps = mapsTree(dir, 'maps', { broken: 3, good: 2, scratch: 2, combined: 2 });
  const ds = await loadDataset({ kind: 'mvtec', root, category: 'cat', maps });
  t.deepEqual(ds.classes, ['broken', 'good', 'scratch']);
  t.false(ds.items.some((it) => it.label === 'combined' || it.image.includes('combined')));
  t.deepEqual(ds.items.map((it) => it.name), ['broken/000', 'broken/001', 'broken/002', 'good/000', 'good/001', 'scratch/000', 'scratch/001']);
  // Map names: a_003, b_002, c_001 (sorted by the first letter): image 000 pairs with a_003, not with c_001 (same number).
  t.is(basename(ds.items[0]!.map as string), 'a_003_map.png');
  t.is(basename(ds.items[2]!.map as string), 'c_001_map.png');
  t.is(ds.items[2]!.image, join(root, 'cat', 'test', 'broken', '002.png'));
  t.true(ds.warnings.some((w) => w.includes('extra')));
  // Pairing is by position: the map values in item order are 1, 2, 3 | 1, 2 | 1, 2.
  const out = python(
    `import cv2, sys
print(' '.join(str(int(cv2.imread(p, cv2.IMREAD_GRAYSCALE)[0, 0])) for p in sys.argv[1:]))`,
    ds.items.map((it) => it.map as string),
  );
  t.is(out.trim(), '1 2 3 1 2 1 2');
});

test('MVTec: count mismatch names the folder; missing category and bad specs are typed errors', async (t) => {
  const dir = tempDir();
  const root = mvtecTree(dir);
  const maps = mapsTree(dir, 'maps', { broken: 3, good: 1, scratch: 2 });
  const e = await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat', maps }), { instanceOf: BadInputError });
  t.true(e!.message.includes(join(maps, 'cat', 'good')), e!.message);
  t.regex(e!.message, /1 maps.*2 images/);
  const missing = await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'nope', groundTruthAsMaps: true }), { instanceOf: IoError });
  t.true(missing!.message.includes(join(root, 'nope', 'test')), missing!.message);
  const noMaps = await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat', maps: join(dir, 'nomaps') }), { instanceOf: IoError });
  t.true(noMaps!.message.includes(join(dir, 'nomaps', 'cat')));
  await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat', groundTruthAsMaps: true, binarizeGroundTruth: 0 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat', maps, binarizeGroundTruth: 128 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(loadDataset({ kind: 'nope' } as never), { instanceOf: InvalidArgumentError });
});

test('MVTec: ground truth as maps, good images get all-zero maps of the image size', async (t) => {
  const dir = tempDir();
  const root = mvtecTree(dir);
  const ds = await loadDataset({ kind: 'mvtec', root, category: 'cat', groundTruthAsMaps: true });
  t.deepEqual(ds.classes, ['broken', 'good', 'scratch']);
  t.is(ds.items.length, 7);
  const size = (m: unknown) => [...(m as Tensor).shape];
  for (const it of ds.items) {
    const m = it.map as Tensor<'uint8'>;
    t.true(isTensor(m));
    t.is(m.dtype, 'uint8');
    if (it.label === 'good') {
      t.deepEqual(size(m), [11, 17]);
      t.true(m.data.every((v) => v === 0));
    } else {
      t.deepEqual(size(m), it.label === 'broken' ? [7, 9] : [6, 5]);
      // 0, 100 -> 0; 200, 255 -> 255.
      t.deepEqual([...m.data.slice(0, 8)], [0, 0, 255, 255, 0, 0, 255, 255]);
    }
  }
  t.deepEqual(ds.warnings, []);
  // Without thresholding: the mask paths, good images still zero tensors.
  const paths = await loadDataset({ kind: 'mvtec', root, category: 'cat', groundTruthAsMaps: true, binarizeGroundTruth: false });
  t.is(paths.items[0]!.map, join(root, 'cat', 'ground_truth', 'broken', '000_mask.png'));
  t.true(isTensor(paths.items[3]!.map));
  // A missing mask is an error naming it.
  const gtDir = join(root, 'cat', 'ground_truth', 'scratch');
  rmSync(join(gtDir, '001_mask.png'));
  const e = await t.throwsAsync(loadDataset({ kind: 'mvtec', root, category: 'cat', groundTruthAsMaps: true }), { instanceOf: IoError });
  t.true(e!.message.includes('001_mask.png'));
});

// ---------------------------------------------------------------------------
// Manifest

test('manifest: .npy float/uint8 maps become tensors, labels and classes, TIFF checks', async (t) => {
  const dir = tempDir();
  writePng(join(dir, 'a.png'), 4, 3, new Array(12).fill(9));
  writePng(join(dir, 'm.png'), 4, 3, new Array(12).fill(7));
  await writeNpy(join(dir, 'f32.npy'), new Tensor('float32', [3, 4], Float32Array.from({ length: 12 }, (_, i) => i / 11)));
  await writeNpy(join(dir, 'f64.npy'), new Tensor('float64', [1, 3, 4], Float64Array.from({ length: 12 }, (_, i) => i * 2)));
  await writeNpy(join(dir, 'u8.npy'), new Tensor('uint8', [3, 4, 1], Uint8Array.from({ length: 12 }, (_, i) => i)));
  await writeNpy(join(dir, 'i32.npy'), new Tensor('int32', [3, 4]));
  python(
    `import numpy as np, cv2, sys
from PIL import Image
d = sys.argv[1]
Image.fromarray(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)).save(d + '/float.tif')
cv2.imwrite(d + '/u8.tiff', np.arange(12, dtype=np.uint8).reshape(3, 4))
cv2.imwrite(d + '/u16.tif', np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000)`,
    [dir],
  );
  const csv = join(dir, 'm.csv');
  writeFileSync(csv, 'image,map,label\na.png,f32.npy,scratch\na.png,f64.npy,crack\nsub/../a.png,u8.npy,crack\na.png,m.png,good\na.png,u8.tiff,good\n');
  const ds = await loadDataset({ kind: 'manifest', path: csv });
  t.is(ds.kind, 'manifest');
  t.deepEqual(ds.classes, ['crack', 'good', 'scratch']);
  t.deepEqual(ds.items.map((it) => it.label), ['scratch', 'crack', 'crack', 'good', 'good']);
  t.is(new Set(ds.items.map((it) => it.name)).size, 5);
  t.deepEqual(ds.items.map((it) => it.name).slice(0, 2), ['a', 'a#2']);
  t.is(ds.items[0]!.image, join(dir, 'a.png'));
  const [f32, f64, u8] = ds.items.map((it) => it.map) as Tensor[];
  t.is(f32!.dtype, 'float32');
  t.deepEqual([...f32!.shape], [3, 4]);
  t.is((f32!.data as Float32Array)[11], 1);
  t.is(f64!.dtype, 'float64');
  t.deepEqual([...f64!.shape], [3, 4]);
  t.is((f64!.data as Float64Array)[5], 10);
  t.is(u8!.dtype, 'uint8');
  t.deepEqual([...u8!.shape], [3, 4]);
  t.is(ds.items[3]!.map, join(dir, 'm.png'));
  t.is(ds.items[4]!.map, join(dir, 'u8.tiff'));
  t.true(ds.warnings.some((w) => /float/.test(w)));

  const bad = async (map: string, error: new (...a: never[]) => Error, re: RegExp) => {
    writeFileSync(csv, `image,map\na.png,${map}\n`);
    const e = await t.throwsAsync(loadDataset({ kind: 'manifest', path: csv }), { instanceOf: error });
    t.regex(e!.message, re);
  };
  await bad('float.tif', BadInputError, /float\.tif.*floating-point/);
  await bad('u16.tif', BadInputError, /u16\.tif.*16-bit/);
  await bad('i32.npy', BadInputError, /int32/);
  await bad('gone.npy', IoError, /gone\.npy/);
  // Unlabelled manifest: no classes.
  writeFileSync(csv, 'image,map\na.png,m.png\n');
  const plain = await loadDataset({ kind: 'manifest', path: csv });
  t.is(plain.classes, undefined);
  t.is(plain.items[0]!.label, undefined);
});

// ---------------------------------------------------------------------------
// Image headers

test('readImageSize: PNG and JPEG headers agree with OpenCV, EXIF orientation swaps', async (t) => {
  const dir = tempDir();
  const files: string[] = [];
  for (const cls of MTD_CLASSES) {
    const f = readdirSync(join(mtdDir, cls, 'Imgs')).filter((n) => n.endsWith('.jpg')).sort();
    files.push(join(mtdDir, cls, 'Imgs', f[0]!), join(mtdDir, cls, 'Imgs', f[f.length - 1]!));
  }
  python(
    `import numpy as np, sys
from PIL import Image
d = sys.argv[1]
a = np.zeros((20, 40, 3), np.uint8)
ex = Image.Exif(); ex[0x0112] = 6
Image.fromarray(a).save(d + '/o6.jpg', exif=ex.tobytes())
Image.fromarray(a).save(d + '/o6.png', exif=ex.tobytes())
Image.fromarray(a).save(d + '/prog.jpg', progressive=True)
Image.fromarray(a[:, :, 0]).save(d + '/gray.png')`,
    [dir],
  );
  files.push(...['o6.jpg', 'o6.png', 'prog.jpg', 'gray.png'].map((f) => join(dir, f)));
  const out = python(
    `import cv2, sys
for p in sys.argv[1:]:
    im = cv2.imread(p, cv2.IMREAD_COLOR); print(im.shape[1], im.shape[0])`,
    files,
  );
  const ours = await Promise.all(files.map(async (f) => readImageSize(f)));
  t.deepEqual(ours.map((s) => `${s.width} ${s.height}`), out.trim().split('\n'));
  t.deepEqual(ours[ours.length - 4], { width: 20, height: 40 });
  writeFileSync(join(dir, 'x.bmp'), 'BM');
  await t.throwsAsync(readImageSize(join(dir, 'x.bmp')), { instanceOf: BadInputError });
});

// ---------------------------------------------------------------------------
// PNG decoder

interface Crafted {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Samples, row-major, channels interleaved (palette: indices). */
  samples: number[];
  palette?: number[];
  /** Filter type per row (cycled). */
  filters: number[];
  before?: [string, Buffer][];
  interlace?: 0 | 1;
}

/** Encodes a PNG with explicit per-row filters (the encoder the decoder is tested against). */
function craftPng(c: Crafted): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[c.colorType];
  const stride = Math.ceil((c.width * channels * c.bitDepth) / 8);
  const bpp = Math.max(1, (channels * c.bitDepth) >> 3);
  const raw = Buffer.alloc((stride + 1) * c.height);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < c.height; y++) {
    const line = Buffer.alloc(stride);
    for (let i = 0; i < c.width * channels; i++) {
      const v = c.samples[y * c.width * channels + i]!;
      if (c.bitDepth === 8) line[i] = v;
      else if (c.bitDepth === 16) line.writeUInt16BE(v, 2 * i);
      else {
        const bit = i * c.bitDepth;
        line[bit >> 3]! |= v << (8 - c.bitDepth - (bit & 7));
      }
    }
    const f = c.filters[y % c.filters.length]!;
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const cc = i >= bpp ? prev[i - bpp]! : 0;
      const p = a + b - cc;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - cc);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : cc][f]!;
      raw[y * (stride + 1) + 1 + i] = (line[i]! - pred) & 0xff;
    }
    prev = line;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(c.width, 0);
  ihdr.writeUInt32BE(c.height, 4);
  ihdr[8] = c.bitDepth;
  ihdr[9] = c.colorType;
  ihdr[12] = c.interlace ?? 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...(c.before ?? []).map(([type, data]) => pngChunk(type, data)),
    ...(c.palette ? [pngChunk('PLTE', Buffer.from(c.palette))] : []),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** OpenCV's IMREAD_GRAYSCALE of each file, as `h w hex`. */
function cv2Gray(files: string[]): string[] {
  return python(
    `import cv2, sys
for p in sys.argv[1:]:
    m = cv2.imread(p, cv2.IMREAD_GRAYSCALE); print(m.shape[0], m.shape[1], m.tobytes().hex())`,
    files,
  )
    .trim()
    .split('\n');
}
const asLine = (m: Tensor<'uint8'>) => `${m.shape[0]} ${m.shape[1]} ${Buffer.from(m.data).toString('hex')}`;

test('PNG decoder equals OpenCV IMREAD_GRAYSCALE on crafted PNGs of every colour type, depth and filter', async (t) => {
  const dir = tempDir();
  const rnd = prng(30);
  const int = (n: number) => Math.floor(rnd() * n);
  const cases: [string, Crafted][] = [];
  const W = 13;
  const H = 10;
  const gamma = (g: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(g); return b; };
  const pixelsRgb = (channels: number) =>
    Array.from({ length: W * H }, () => {
      const r = int(256);
      const same = rnd() < 0.2; // some neutral pixels (r = g = b)
      const px = same ? [r, r, r] : [r, int(256), int(256)];
      return channels === 4 ? [...px, int(256)] : px;
    }).flat();
  for (const filters of [[0, 1, 2, 3, 4], [4], [3, 1]]) {
    const tag = filters.join('');
    for (const bd of [1, 2, 4, 8] as const) {
      cases.push([`g${bd}_${tag}`, { width: W, height: H, colorType: 0, bitDepth: bd, samples: Array.from({ length: W * H }, () => int(1 << bd)), filters }]);
      const entries = Math.min(1 << bd, 7);
      const palette = Array.from({ length: entries * 3 }, () => int(256));
      palette.splice(0, 3, 77, 77, 77); // a gray entry
      cases.push([`p${bd}_${tag}`, { width: W, height: H, colorType: 3, bitDepth: bd, samples: Array.from({ length: W * H }, () => int(entries)), palette, filters }]);
    }
    cases.push([`ga_${tag}`, { width: W, height: H, colorType: 4, bitDepth: 8, samples: Array.from({ length: W * H * 2 }, () => int(256)), filters }]);
    cases.push([`rgb_${tag}`, { width: W, height: H, colorType: 2, bitDepth: 8, samples: pixelsRgb(3), filters }]);
    cases.push([`rgba_${tag}`, { width: W, height: H, colorType: 6, bitDepth: 8, samples: pixelsRgb(4), filters }]);
  }
  // Declared gamma: libpng converts colour to gray in linear light.
  cases.push(['rgb_srgb', { width: W, height: H, colorType: 2, bitDepth: 8, samples: pixelsRgb(3), filters: [0, 4], before: [['sRGB', Buffer.from([0])]] }]);
  cases.push(['rgb_gama', { width: W, height: H, colorType: 2, bitDepth: 8, samples: pixelsRgb(3), filters: [1], before: [['gAMA', gamma(45455)]] }]);
  cases.push(['rgb_gama1', { width: W, height: H, colorType: 2, bitDepth: 8, samples: pixelsRgb(3), filters: [2], before: [['gAMA', gamma(100000)]] }]);
  cases.push(['pal_srgb', { width: W, height: H, colorType: 3, bitDepth: 8, samples: Array.from({ length: W * H }, () => int(5)), palette: Array.from({ length: 15 }, () => int(256)), filters: [4], before: [['sRGB', Buffer.from([0])]] }]);
  const files = cases.map(([name, c]) => {
    const p = join(dir, `${name}.png`);
    writeFileSync(p, craftPng(c));
    return p;
  });
  const expected = cv2Gray(files);
  for (const [i, [name, c]] of cases.entries()) {
    const m = await readGrayPng(files[i]!);
    t.is(asLine(m), expected[i]!, name);
    // Gray 8-bit: the decoded pixels are the samples themselves (checks the encoder too).
    if (c.colorType === 0 && c.bitDepth === 8) t.deepEqual([...m.data], c.samples, name);
  }
  // The declared gamma really changes the result (the linear-light path is exercised).
  const srgb = cases.find(([n]) => n === 'rgb_srgb')![1];
  t.not(asLine(decodeGrayPng(craftPng({ ...srgb, before: [] }))), asLine(decodeGrayPng(craftPng(srgb))));
});

test('PNG decoder equals OpenCV on real MTD masks and on PNGs written by OpenCV and Pillow', async (t) => {
  const dir = tempDir();
  const files: string[] = [];
  for (const cls of MTD_CLASSES) {
    const f = readdirSync(join(mtdDir, cls, 'Imgs')).filter((n) => n.endsWith('.png')).sort();
    files.push(join(mtdDir, cls, 'Imgs', f[0]!), join(mtdDir, cls, 'Imgs', f[Math.floor(f.length / 2)]!));
  }
  python(
    `import numpy as np, cv2, sys
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(5)
a = (rng.random((61, 47, 3)) * 255).astype(np.uint8); a[10:30, 5:40] = 128
cv2.imwrite(d + '/cv_rgb.png', a); cv2.imwrite(d + '/cv_gray.png', a[:, :, 1])
cv2.imwrite(d + '/cv_rgba.png', np.dstack([a, a[:, :, :1]]))
Image.fromarray(a).save(d + '/pil_rgb.png', optimize=True)
Image.fromarray(a).convert('P', palette=Image.ADAPTIVE, colors=16).save(d + '/pil_pal4.png', bits=4)
Image.fromarray(a).convert('LA').save(d + '/pil_la.png')
Image.fromarray(a[:, :, 0] > 128).save(d + '/pil_1bit.png')`,
    [dir],
  );
  files.push(...['cv_rgb', 'cv_gray', 'cv_rgba', 'pil_rgb', 'pil_pal4', 'pil_la', 'pil_1bit'].map((n) => join(dir, `${n}.png`)));
  const expected = cv2Gray(files);
  for (const [i, f] of files.entries()) t.is(asLine(await readGrayPng(f)), expected[i]!, f);
  // An anti-aliased real mask has values other than 0 and 255 (the reason for binarizeGroundTruth).
  const m = await readGrayPng(files[0]!);
  t.true(m.data.some((v) => v > 0 && v < 255));
});

test('PNG decoder refuses interlaced, 16-bit and corrupt files with typed errors', async (t) => {
  const base: Crafted = { width: 3, height: 2, colorType: 0, bitDepth: 8, samples: [1, 2, 3, 4, 5, 6], filters: [0] };
  t.deepEqual([...decodeGrayPng(craftPng(base)).data], [1, 2, 3, 4, 5, 6]);
  t.throws(() => decodeGrayPng(craftPng({ ...base, interlace: 1 }), 'x.png'), { instanceOf: BadInputError, message: /x\.png.*interlaced/ });
  t.throws(() => decodeGrayPng(craftPng({ ...base, bitDepth: 16 })), { instanceOf: BadInputError, message: /16-bit/ });
  const corrupt = craftPng(base);
  corrupt[corrupt.length - 20]! ^= 0xff; // inside IDAT
  t.throws(() => decodeGrayPng(corrupt), { instanceOf: BadInputError, message: /CRC|inflate/ });
  const truncated = craftPng(base).subarray(0, 45);
  t.throws(() => decodeGrayPng(truncated), { instanceOf: BadInputError });
  t.throws(() => decodeGrayPng(Buffer.from('not a png at all, really')), { instanceOf: BadInputError, message: /not a PNG/ });
  const badFilter = craftPng({ ...base, filters: [5 as never] });
  t.throws(() => decodeGrayPng(badFilter), { instanceOf: BadInputError, message: /filter type 5/ });
  await t.throwsAsync(readGrayPng(join(tempDir(), 'missing.png')), { instanceOf: IoError, message: /missing\.png/ });
});
