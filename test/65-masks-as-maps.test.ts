// Masks as maps (issue 11 item 5): binary masks used directly as the binary maps
// (no MEBin, no erosion), crops as usual; discover suggests it for two-valued maps;
// the bundle records it so predict treats new maps alike.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractRegions } from '../ts/stages/regions.js';
import { discover, predict } from '../ts/stages/discover.js';
import { loadTrainedModel } from '../ts/stages/train.js';
import { Tensor } from '../ts/core/tensor.js';
import { generateSynthetic } from '../ts/io/synthetic.js';
import { cli, tempDir, writePng } from './helpers.js';

const TINY_ARCH = { patchSize: 16, embedDim: 64, depth: 2, numHeads: 2, maskLayers: 1 };

/** A 120x120 mask: a 1-pixel-wide vertical line, a 10x10 square and an L-shape (8-connected diagonal join), value `v`. */
function threeRegionMask(v: number): Tensor<'uint8'> {
  const S = 120;
  const m = new Uint8Array(S * S);
  for (let y = 10; y < 40; y++) m[y * S + 15] = v; // thin line: MEBin's 6x6 erosion would delete it
  for (let y = 70; y < 80; y++) for (let x = 70; x < 80; x++) m[y * S + x] = v;
  for (let x = 60; x < 90; x++) m[15 * S + x] = v;
  m[16 * S + 91] = v; // (16, 90) touches the line end (15, 89) diagonally: one 8-connected L
  m[16 * S + 90] = v;
  return new Tensor('uint8', [S, S], m);
}

/** 8-connected component sizes of a 0/non-0 mask, by flood fill (the test's own oracle). */
function componentSizes(mask: Tensor<'uint8'>): number[] {
  const [H, W] = [mask.shape[0]!, mask.shape[1]!];
  const seen = new Uint8Array(H * W);
  const sizes: number[] = [];
  for (let s = 0; s < H * W; s++) {
    if (!mask.data[s] || seen[s]) continue;
    let n = 0;
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      n++;
      const [y, x] = [Math.floor(p / W), p % W];
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const [yy, xx] = [y + dy, x + dx];
          if (yy < 0 || xx < 0 || yy >= H || xx >= W) continue;
          const q = yy * W + xx;
          if (mask.data[q] && !seen[q]) {
            seen[q] = 1;
            stack.push(q);
          }
        }
    }
    sizes.push(n);
  }
  return sizes.sort((a, b) => a - b);
}

const gray = (S: number) => new Tensor('uint8', [S, S, 3], new Uint8Array(S * S * 3).fill(90));

test('masksAsMaps: regions of a 0/255 mask are its components, no erosion, the level decides foreground', async (t) => {
  const mask = threeRegionMask(255);
  const sizes = componentSizes(mask);
  t.is(sizes.length, 3);
  const r = await extractRegions([gray(120)], [mask], { masksAsMaps: true, threads: 1 });
  const item = r.items[0]!;
  t.is(item.count, 3);
  t.is(item.threshold, 127); // foreground = value > 127 = value >= maskLevel 128
  t.is(item.foreground, sizes.reduce((a, b) => a + b, 0));
  t.deepEqual(item.sequence, []);
  t.deepEqual(r.searchRange, [0, 255]);
  t.is(item.crops.length, 3);
  // Each crop holds exactly one whole component (the regions are far apart): mask areas = component sizes.
  t.deepEqual(item.crops.map((c) => c.maskArea).sort((a, b) => a - b), sizes);
  for (const c of item.crops) {
    t.true(c.score > 0.9, `score ${c.score}`);
    t.deepEqual(c.mask!.shape, c.image!.shape.slice(0, 2));
  }
  // The same mask through MEBin loses the thin line to the erosion (METHOD.md §2.3).
  const viaMebin = await extractRegions([gray(120), gray(120)], [mask, new Tensor('uint8', [120, 120], new Uint8Array(120 * 120))], { threads: 1 });
  t.true(viaMebin.items[0]!.foreground < item.foreground);

  // maskLevel: values 0/100 are foreground at level 100, not at 101 (then: whole image, est 0, score 0).
  const low = threeRegionMask(100);
  const at100 = await extractRegions([gray(120)], [low], { masksAsMaps: true, maskLevel: 100 });
  t.deepEqual(at100.items[0]!.crops.map((c) => c.maskArea).sort((a, b) => a - b), sizes);
  const at101 = await extractRegions([gray(120)], [low], { masksAsMaps: true, maskLevel: 101 });
  t.is(at101.items[0]!.count, 0);
  t.deepEqual(at101.items[0]!.boxes, [[0, 0, 120, 120]]);
  t.is(at101.items[0]!.crops[0]!.score, 0);
  await t.throwsAsync(extractRegions([gray(120)], [low], { masksAsMaps: true, maskLevel: 0 }), { message: /maskLevel/ });
  await t.throwsAsync(extractRegions([gray(120)], [low], { masksAsMaps: true, maskLevel: 256 }), { message: /maskLevel/ });
});

test('two-valued maps without masksAsMaps: a warning suggests it (and MEBin falls back to whole images)', async (t) => {
  const m = threeRegionMask(255);
  const r = await extractRegions([gray(120), gray(120)], [m, m], { threads: 1 });
  t.true(r.warnings.some((w) => /masksAsMaps/.test(w)), r.warnings.join('\n'));
  t.deepEqual(r.items[0]!.boxes, [[0, 0, 120, 120]]); // degenerate range: the reference's fallback
  const asMasks = await extractRegions([gray(120), gray(120)], [m, m], { masksAsMaps: true, threads: 1 });
  t.false(asMasks.warnings.some((w) => /masksAsMaps/.test(w)));
  // Continuous maps: no suggestion.
  const s = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 32 });
  const cont = await extractRegions(s.map((x) => x.image), s.map((x) => x.map), { threads: 1 });
  t.false(cont.warnings.some((w) => /masksAsMaps/.test(w)));
});

test('the bundle records masksAsMaps and its level; predict on new masks treats them alike', async (t) => {
  const samples = generateSynthetic({ perType: 2, good: 1, size: 64, mapSize: 32, seed: 5 });
  // Masks at value 200, level 150: a predict that ignored the record (MEBin, or level 128 on masks of 100) would differ.
  const masks = samples.map((s) => new Tensor('uint8', s.mask.shape, s.mask.data.map((v) => (v ? 200 : 0))));
  const items = samples.map((s, i) => ({ image: s.image, map: masks[i]!, label: s.label }));
  const result = await discover(items, { k: 3, masksAsMaps: true, maskLevel: 150, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2 });
  try {
    t.is(result.model.inference?.masksAsMaps, true);
    t.is(result.model.inference?.maskLevel, 150);
    const file = join(tempDir(), 'm.safetensors');
    await result.model.save(file);
    const loaded = await loadTrainedModel(file);
    try {
      t.deepEqual(loaded.inference, result.model.inference);
      const picks = [0, 3, samples.length - 1];
      const again = await predict(loaded, picks.map((i) => items[i]!.image), picks.map((i) => items[i]!.map), { threads: 2 });
      picks.forEach((i, j) => {
        t.deepEqual(again[j]!.regions.map((r) => r.box), result.images[i]!.regions.map((r) => r.box));
        t.is(again[j]!.cluster, result.images[i]!.cluster);
      });
      // An explicit option overrides the record: masks at 200 with level 201 are empty -> whole-image crops.
      const over = await predict(loaded, [items[0]!.image], [items[0]!.map], { maskLevel: 201, threads: 2 });
      t.deepEqual(over[0]!.regions.map((r) => r.box), [[0, 0, 64, 64]]);
    } finally {
      loaded.dispose();
    }
  } finally {
    result.model.dispose();
  }
});

test('CLI: regions --masks-as-maps; --mask-level alone is a usage error', (t) => {
  const dir = tempDir();
  const m = threeRegionMask(255);
  writePng(join(dir, 'map.png'), 120, 120, m.data);
  writePng(join(dir, 'img.png'), 120, 120, new Uint8Array(120 * 120).fill(90));
  writeFileSync(join(dir, 'list.csv'), 'image,map\nimg.png,map.png\n');
  const ok = cli(['regions', '--manifest', join(dir, 'list.csv'), '--out', join(dir, 'out'), '--masks-as-maps', '--json']);
  t.is(ok.status, 0, ok.stderr);
  const json = JSON.parse(readFileSync(join(dir, 'out', 'regions.json'), 'utf8'));
  t.is(json.items[0].count, 3);
  t.is(json.items[0].crops.length, 3);
  const bad = cli(['regions', '--manifest', join(dir, 'list.csv'), '--out', join(dir, 'out2'), '--mask-level', '5']);
  t.is(bad.status, 2, bad.stderr);
  t.regex(bad.stderr, /--masks-as-maps/);
  t.false(existsSync(join(dir, 'out2')));
  const range = cli(['regions', '--manifest', join(dir, 'list.csv'), '--out', join(dir, 'out3'), '--masks-as-maps', '--mask-level', '300']);
  t.is(range.status, 2, range.stderr);
});
