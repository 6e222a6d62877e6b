import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError, binarize, InvalidArgumentError, IoError, Tensor } from 'anomalyncd';
import { testingAddon } from '../ts/native/loader.js';
import { encodePng, prng, tempDir, writePng } from './helpers.js';

/** Builds an H×W uint8 map: background value plus filled rectangles [r0, r1] × [c0, c1] (inclusive). */
function rectMap(h: number, w: number, bg: number, rects: [number, number, number, number, number][]): Tensor<'uint8'> {
  const data = new Uint8Array(h * w).fill(bg);
  for (const [r0, r1, c0, c1, v] of rects) for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) data[r * w + c] = v;
  return new Tensor('uint8', [h, w], data);
}

function block(h: number, w: number, r0: number, r1: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out.push(r >= r0 && r <= r1 && c >= r0 && c <= r1 ? 255 : 0);
  return out;
}

test('METHOD.md §2.7 threshold-selection table', (t) => {
  const { selectThreshold } = testingAddon().kernels;
  const pad = (s: number[]) => [...s, ...new Array(64 - s.length).fill(0)];
  const rows: [number[], number, number, number][] = [
    [pad([0, 0, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1]), 3, 6, 233],
    [pad([0, 2, 2, 2, 2, 1, 1, 2, 2, 2, 2]), 2, 10, 219],
    [pad([0, 1, 1, 1, 0, 2, 2, 2]), 0, -1, 255],
    [pad([0, 0, 0, 5, 5, 5, 5]), 5, 6, 233],
    [pad([0, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2]), 2, 12, 212],
    [[...new Array(10).fill(0), ...new Array(54).fill(1)], 1, 63, 32],
  ];
  for (const [counts, est, end, thr] of rows) {
    const s = selectThreshold(counts, [30, 255]);
    t.deepEqual([s.est, s.endIndex, s.threshold], [est, end, thr], counts.slice(0, 14).join(','));
  }
});

test('METHOD.md §2.7 end-to-end mini example (three 40x40 maps), fast and oracle', async (t) => {
  const m1 = rectMap(40, 40, 10, [[5, 16, 5, 16, 200], [25, 34, 22, 31, 120]]);
  const m2 = rectMap(40, 40, 5, [[10, 29, 10, 29, 250], [17, 22, 17, 22, 255]]);
  const m3 = rectMap(40, 40, 40, []);
  for (const oracle of [false, true]) {
    const r = await binarize([m1, m2, m3], { oracle, threads: 2 });
    t.deepEqual(r.searchRange, [40, 255]);
    t.deepEqual(r.maps.map((m) => [m.threshold, m.count]), [[120, 1], [42, 1], [255, 0]]);
    t.deepEqual(r.maps[0]!.sequence, [...new Array(17).fill(0), ...new Array(24).fill(1), ...new Array(23).fill(2)]);
    t.deepEqual(r.maps[1]!.sequence, [0, ...new Array(63).fill(1)]);
    t.deepEqual(Array.from(r.maps[0]!.binary!.data), block(40, 40, 8, 14));
    t.deepEqual(Array.from(r.maps[1]!.binary!.data), block(40, 40, 13, 27));
    t.is(r.maps[2]!.foreground, 0);
    t.is(r.maps[0]!.foreground, 49);
    t.deepEqual(r.maps[0]!.binary!.shape, [40, 40]);
  }
});

test('single pass equals the per-threshold oracle on 2400 random maps (plateaus, ties, borders, ranges)', async (t) => {
  const rand = prng(7);
  let compared = 0;
  let nonFallback = 0;
  for (let batch = 0; batch < 24; batch++) {
    const maps: Tensor<'uint8'>[] = [];
    for (let i = 0; i < 100; i++) {
      const h = 1 + Math.floor(rand() * (rand() < 0.2 ? 64 : 36));
      const w = 1 + Math.floor(rand() * (rand() < 0.2 ? 64 : 36));
      const data = new Uint8Array(h * w);
      const levels = [0, 3, 4, 7, 8, 40, 41, 128, 129, 200, 250, 251, 255].map((v) => (rand() < 0.5 ? v : Math.floor(rand() * 256)));
      const base = Math.floor(rand() * 60);
      data.fill(base);
      const blobs = Math.floor(rand() * 6);
      for (let b = 0; b < blobs; b++) {
        const r0 = Math.floor(rand() * h), c0 = Math.floor(rand() * w);
        const bh = 1 + Math.floor(rand() * 14), bw = 1 + Math.floor(rand() * 14);
        const v = levels[Math.floor(rand() * levels.length)]!;
        const plateau = rand() < 0.5;
        for (let r = r0; r < Math.min(h, r0 + bh); r++)
          for (let c = c0; c < Math.min(w, c0 + bw); c++) data[r * w + c] = plateau ? v : Math.min(255, v + Math.floor(rand() * 20));
      }
      if (rand() < 0.2) for (let p = 0; p < data.length; p++) if (rand() < 0.1) data[p] = Math.floor(rand() * 256);
      maps.push(new Tensor('uint8', [h, w], data));
    }
    const options = {
      sampleRate: [4, 4, 1, 3, 7][batch % 5]!,
      minIntervalLen: 1 + (batch % 6),
      erode: batch % 4 !== 3,
      threads: 2,
      ...(batch % 3 === 2 ? { range: [Math.floor(rand() * 100), 150 + Math.floor(rand() * 106)] as [number, number] } : {}),
    };
    const fast = await binarize(maps, options);
    const oracle = await binarize(maps, { ...options, oracle: true });
    t.deepEqual(fast.searchRange, oracle.searchRange);
    for (let i = 0; i < maps.length; i++) {
      const a = fast.maps[i]!, b = oracle.maps[i]!;
      if (a.threshold !== b.threshold || a.count !== b.count || a.foreground !== b.foreground || a.sequence.join() !== b.sequence.join() || Buffer.compare(a.binary!.data, b.binary!.data) !== 0) {
        t.fail(`batch ${batch} map ${i} differs: ${JSON.stringify({ options, fast: [a.threshold, a.count], oracle: [b.threshold, b.count] })}`);
        return;
      }
      compared++;
      if (a.threshold !== 255) nonFallback++;
    }
  }
  t.is(compared, 2400);
  t.true(nonFallback > 500, `only ${nonFallback} maps chose a real threshold`);
});

test('float maps are normalised together (export recipe) and NaN/Inf are refused', async (t) => {
  const a = new Tensor('float32', [2, 2], Float32Array.from([0.5, 1, 1.5, 2.5]));
  const b = new Tensor('float64', [1, 2], Float64Array.from([0.5, 1.5]));
  const r = await binarize([a, b], { returnBinary: true });
  // (v - 0.5) / 2 * 255 truncated: 0, 63, 127, 255 and 0, 127 -> maxima 255 and 127.
  t.deepEqual(r.searchRange, [127, 255]);
  const withNaN = new Tensor('float32', [2, 2], Float32Array.from([0, NaN, 1, 2]));
  await t.throwsAsync(binarize([a, withNaN]), { instanceOf: InvalidArgumentError, message: /maps\[1\].*non-finite.*0,1/ });
  const withInf = new Tensor('float64', [1, 2], Float64Array.from([0, Infinity]));
  await t.throwsAsync(binarize([withInf]), { instanceOf: InvalidArgumentError, message: /maps\[0\]/ });
});

test('a degenerate search range falls back everywhere, with a warning (METHOD.md T4)', async (t) => {
  const a = rectMap(20, 20, 0, [[2, 12, 2, 12, 200]]);
  const b = rectMap(20, 20, 10, [[5, 15, 5, 15, 200]]);
  const r = await binarize([a, b]);
  t.deepEqual(r.searchRange, [200, 200]);
  t.true(r.maps.every((m) => m.threshold === 255 && m.count === 0 && m.foreground === 0));
  t.true(r.warnings.some((w) => /degenerate/.test(w)));
  const single = await binarize([a]);
  t.is(single.maps[0]!.threshold, 255);
  // An explicit range (e.g. saved from a reference set) binarises a single map (METHOD.md T31).
  const ranged = await binarize([a], { range: [0, 255] });
  t.true(ranged.maps[0]!.count === 1 && ranged.maps[0]!.foreground > 0);
});

test('bad map files give typed errors naming the file; 1x1 maps follow the reference with a warning', async (t) => {
  const dir = tempDir();
  const good = join(dir, 'good.png');
  writePng(good, 8, 8, new Array(64).fill(0).map((_, i) => i));
  const colour = join(dir, 'colour.png');
  writePng(colour, 4, 4, new Array(48).fill(7), 2);
  const deep = join(dir, 'deep.png');
  writePng(deep, 4, 4, new Array(16).fill(4000), 0, 16);
  const empty = join(dir, 'empty.png');
  writeFileSync(empty, '');
  const truncated = join(dir, 'truncated.png');
  writeFileSync(truncated, encodePng(32, 32, new Array(1024).fill(9)).subarray(0, 60));
  const garbage = join(dir, 'garbage.png');
  writeFileSync(garbage, 'this is not an image, just text that ends without a marker');
  const cases: [string, RegExp, new (...a: never[]) => Error][] = [
    [colour, /colour\.png.*3 channels/, BadInputError],
    [deep, /deep\.png.*16-bit/, BadInputError],
    [empty, /empty\.png.*empty/, BadInputError],
    [truncated, /truncated\.png.*truncated/, BadInputError],
    [garbage, /garbage\.png/, BadInputError],
    [join(dir, 'missing.png'), /missing\.png/, IoError],
  ];
  for (const [path, message, Cls] of cases) await t.throwsAsync(binarize([good, path]), { instanceOf: Cls, message }, path);
  mkdirSync(join(dir, 'one'));
  const tiny = join(dir, 'one', 'tiny.png');
  writePng(tiny, 1, 1, [200]);
  const r = await binarize([good, tiny]);
  t.is(r.maps.length, 2);
  t.true(r.warnings.some((w) => /tiny\.png.*1x1/.test(w)));
});

test('binarize refuses an unknown option and names the closest known one', async (t) => {
  const map = new Tensor('uint8', [8, 8], new Uint8Array(64).fill(7));
  await t.throwsAsync(binarize([map], { sampelRate: 4 } as never), { instanceOf: InvalidArgumentError, message: /unknown option 'sampelRate' \(did you mean 'sampleRate'\?\)/ });
});
