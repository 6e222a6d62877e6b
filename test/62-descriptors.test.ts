// Region descriptors (issue 11): known answers on synthetic shapes, standardisation, the
// kNN novelty in descriptor space, K estimation on descriptors of clearly different shape
// types, typed errors; and the C++ descriptors (extractRegions({descriptors: true})) against
// this TypeScript oracle on real MTD crops and synthetic ones.
import test from 'ava';
import {
  DESCRIPTOR_DIM,
  DESCRIPTOR_NAMES,
  descriptorModel,
  descriptorNovelty,
  fitScaler,
  joinStandardised,
  MAX_DESCRIPTOR_BANK,
  regionDescriptor,
  standardise,
} from '../ts/analysis/descriptors.js';
import { estimateKAsync } from '../ts/analysis/estimate-k-async.js';
import { InvalidArgumentError } from '../ts/core/errors.js';
import { Tensor } from '../ts/core/tensor.js';
import { extractRegions, generateSynthetic, loadDataset } from 'anomalyncd';
import { mtdDir, prng } from './helpers.js';

const at = (name: (typeof DESCRIPTOR_NAMES)[number]): number => DESCRIPTOR_NAMES.indexOf(name);

/** A crop of size S: gray background `bg`, the mask's pixels set to `fg` (RGB equal), and the 0/255 mask. */
function crop(S: number, inside: (x: number, y: number) => boolean, fg = 60, bg = 200, noise?: () => number): { image: Tensor<'uint8'>; mask: Tensor<'uint8'>; area: number } {
  const img = new Uint8Array(S * S * 3).fill(bg);
  const m = new Uint8Array(S * S);
  let area = 0;
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      if (inside(x, y)) {
        m[y * S + x] = 255;
        img.fill(fg, 3 * (y * S + x), 3 * (y * S + x) + 3);
        area++;
      }
  if (noise) for (let p = 0; p < S * S; p++) img.fill(Math.max(0, Math.min(255, img[3 * p]! + Math.round(noise()))), 3 * p, 3 * p + 3);
  return { image: new Tensor('uint8', [S, S, 3], img), mask: new Tensor('uint8', [S, S], m), area };
}

const disk = (cx: number, cy: number, r: number) => (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;

test('shape: a disk is round and solid, a thin line is elongated and thin; areas and components exact', (t) => {
  t.is(DESCRIPTOR_DIM, DESCRIPTOR_NAMES.length);
  const d = crop(64, disk(32, 32, 10));
  const l = crop(64, (x, y) => x >= 7 && x < 57 && (y === 31 || y === 32)); // 50 x 2
  const dd = regionDescriptor(d.image, d.mask);
  const ld = regionDescriptor(l.image, l.mask);
  t.is(dd.length, DESCRIPTOR_DIM);
  t.is(dd[at('logArea')], Math.log1p(d.area));
  t.is(ld[at('logArea')], Math.log1p(100));
  // Elongation: 0.5 log(l1 / l2); the line's second moments are (50^2 - 1) / 12 + 1/12 and (2^2 - 1) / 12 + 1/12.
  t.true(Math.abs(dd[at('logElongation')]!) < 0.02, `disk ${dd[at('logElongation')]}`);
  t.true(Math.abs(ld[at('logElongation')]! - 0.5 * Math.log(2500 / 4)) < 1e-9, `line ${ld[at('logElongation')]}`);
  // The line is a rectangle: extent and solidity 1; perimeter 2 * (50 + 2) edges, thickness 2A/P.
  t.is(ld[at('extent')], 1);
  t.true(Math.abs(ld[at('solidity')]! - 1) < 1e-12);
  t.true(Math.abs(ld[at('logThickness')]! - Math.log(200 / 104)) < 1e-12);
  t.true(Math.abs(ld[at('logCompactness')]! - Math.log((104 * 104) / (4 * Math.PI * 100))) < 1e-12);
  // The disk is thicker, more compact (lower P^2/A), its extent near pi/4.
  t.true(dd[at('logThickness')]! > ld[at('logThickness')]! + 1);
  t.true(dd[at('logCompactness')]! < ld[at('logCompactness')]! - 0.5);
  t.true(dd[at('extent')]! > 0.65 && dd[at('extent')]! < 0.8); // pi/4 for a continuous disk
  t.true(dd[at('extent')]! < ld[at('extent')]!);
  t.true(dd[at('solidity')]! > 0.9);
  t.is(dd[at('logComponents')], 0);
  // Two disks: two components; a ring (annulus) is far from convex.
  const two = crop(64, (x, y) => disk(16, 16, 6)(x, y) || disk(46, 46, 6)(x, y));
  t.is(regionDescriptor(two.image, two.mask)[at('logComponents')], Math.log(2));
  const ring = crop(64, (x, y) => disk(32, 32, 20)(x, y) && !disk(32, 32, 16)(x, y));
  t.true(regionDescriptor(ring.image, ring.mask)[at('solidity')]! < 0.5);
  t.is(dd[at('empty')], 0);
});

test('appearance: a dark defect on a bright background has negative contrast, all pixels dark; an empty mask is flagged', (t) => {
  const dark = crop(48, disk(24, 24, 8), 40, 210);
  const bright = crop(48, disk(24, 24, 8), 250, 90);
  const d = regionDescriptor(dark.image, dark.mask);
  const b = regionDescriptor(bright.image, bright.mask);
  t.true(Math.abs(d[at('meanIn')]! - 40 / 255) < 1e-6);
  t.true(Math.abs(d[at('meanRing')]! - 210 / 255) < 1e-6);
  t.true(d[at('contrast')]! < -5 && b[at('contrast')]! > 5);
  t.is(d[at('darkFraction')], 1);
  t.is(b[at('brightFraction')], 1);
  t.is(d[at('stdIn')], 0);
  // The gradient lives on the edge: the ring (which touches the edge) has a larger mean than the flat inside's.
  t.true(d[at('gradRing')]! > 0);
  const empty = crop(32, () => false, 0, 128);
  const e = regionDescriptor(empty.image, empty.mask);
  t.is(e[at('empty')], 1);
  t.is(e[at('logArea')], 0);
  t.true(Math.abs(e[at('meanIn')]! - 128 / 255) < 1e-6);
  // Gray [h, w] and [h, w, 1] images give the RGB result.
  const gray = new Tensor('uint8', [48, 48], Uint8Array.from({ length: 48 * 48 }, (_, i) => dark.image.data[3 * i]!));
  t.deepEqual(Array.from(regionDescriptor(gray, dark.mask)), Array.from(d));
});

test('typed errors for bad crops and mismatched sizes', (t) => {
  const c = crop(16, disk(8, 8, 3));
  t.throws(() => regionDescriptor(c.image, new Tensor('uint8', [15, 16])), { instanceOf: InvalidArgumentError, message: /must match/ });
  t.throws(() => regionDescriptor(new Tensor('float32', [16, 16, 3]) as never, c.mask), { instanceOf: InvalidArgumentError, message: /uint8/ });
  t.throws(() => regionDescriptor(null as never, c.mask), { instanceOf: InvalidArgumentError });
  t.throws(() => fitScaler([]), { instanceOf: InvalidArgumentError });
  t.throws(() => standardise([1, 2], fitScaler([[1, 2, 3]])), { instanceOf: InvalidArgumentError });
  t.throws(() => descriptorNovelty([1, 2], new Float64Array(0), 2), { instanceOf: InvalidArgumentError });
  t.throws(() => joinStandardised([{ data: [1, 2, 3], dim: 2 }], 2), { instanceOf: InvalidArgumentError });
});

test('standardisation: fit statistics give zero mean, unit scale; a constant component keeps scale 1', (t) => {
  const rows = [[1, 5, 2], [3, 5, 4], [5, 5, 9]];
  const s = fitScaler(rows);
  t.deepEqual(Array.from(s.mean), [3, 5, 5]);
  t.is(s.scale[1], 1);
  const z = rows.map((r) => standardise(r, s));
  for (let d = 0; d < 3; d++) t.true(Math.abs(z.reduce((a, r) => a + r[d]!, 0)) < 1e-12);
  t.true(Math.abs(z.reduce((a, r) => a + r[0]! ** 2, 0) / 3 - 1) < 1e-12);
  // Joined blocks: each block's total variance is 1 whatever its width.
  const wide = Float64Array.from({ length: 3 * 4 }, (_, i) => (i * 7919) % 13);
  const j = joinStandardised([{ data: [1, 2, 3], dim: 1 }, { data: wide, dim: 4 }], 3);
  t.is(j.dim, 5);
  const varOf = (cols: number[]) => cols.reduce((a, c) => a + [0, 1, 2].reduce((b, i) => b + j.fit[i * 5 + c]! ** 2, 0) / 3, 0);
  t.true(Math.abs(varOf([0]) - 1) < 1e-12);
  t.true(Math.abs(varOf([1, 2, 3, 4]) - 1) < 1e-12);
});

/** Shape types with random sizes and positions, pixel noise: small dark disks, thin lines, large bright squares. */
function shapeSet(perType: number, seed: number) {
  const rand = prng(seed);
  const noise = () => 40 * (rand() - 0.5);
  const out: { type: string; d: Float64Array }[] = [];
  for (let i = 0; i < perType; i++) {
    const r = 5 + 4 * rand();
    const c = crop(48, disk(24 + 4 * rand(), 24 + 4 * rand(), r), 40 + 30 * rand(), 190, noise);
    out.push({ type: 'disk', d: regionDescriptor(c.image, c.mask) });
    const len = 30 + 14 * rand(), ang = Math.PI * rand(), th = 0.8 + 0.6 * rand();
    const l = crop(64, (x, y) => {
      const u = (x - 32) * Math.cos(ang) + (y - 32) * Math.sin(ang), v = -(x - 32) * Math.sin(ang) + (y - 32) * Math.cos(ang);
      return Math.abs(u) <= len / 2 && Math.abs(v) <= th;
    }, 90 + 30 * rand(), 170, noise);
    out.push({ type: 'line', d: regionDescriptor(l.image, l.mask) });
    const side = 20 + 8 * rand();
    const q = crop(64, (x, y) => Math.abs(x - 32) <= side / 2 && Math.abs(y - 32) <= side / 2, 230, 120 + 20 * rand(), noise);
    out.push({ type: 'square', d: regionDescriptor(q.image, q.mask) });
  }
  return out;
}

test('K estimation on standardised descriptors of three clearly different shape types: K = 3', async (t) => {
  const set = shapeSet(15, 5);
  const s = fitScaler(set.map((r) => r.d));
  const x = Float64Array.from(set.flatMap((r) => Array.from(standardise(r.d, s))));
  for (const method of ['eigengap', 'silhouette'] as const) {
    const est = await estimateKAsync(x, set.length, DESCRIPTOR_DIM, { method, kMin: 2, kMax: 8, seed: 1 });
    t.is(est.k, 3, `${method}: ${JSON.stringify(est.curve)}`);
  }
});

test('descriptor novelty: a shape type missing from the bank scores higher than fresh shapes of the known types', (t) => {
  const fit = shapeSet(12, 8).filter((r) => r.type !== 'line');
  const model = descriptorModel(fit.map((r) => r.d), prng(1));
  t.is(model.bank.length, fit.length * DESCRIPTOR_DIM);
  const fresh = shapeSet(6, 9);
  const score = (d: Float64Array) => descriptorNovelty(standardise(d, model.scaler), model.bank, DESCRIPTOR_DIM);
  const known = fresh.filter((r) => r.type !== 'line').map((r) => score(r.d));
  const novel = fresh.filter((r) => r.type === 'line').map((r) => score(r.d));
  t.true(Math.min(...novel) > Math.max(...known), `novel ${novel} vs known ${known}`);
  // A bank row scores ~0 against itself (the nearest neighbour is itself): k = 1.
  t.true(descriptorNovelty(model.bank.subarray(0, DESCRIPTOR_DIM), model.bank, DESCRIPTOR_DIM, 1) === 0);
  // The bank is capped (a seeded subsample beyond MAX_DESCRIPTOR_BANK rows) and rounded to 1e-4.
  const many = Array.from({ length: MAX_DESCRIPTOR_BANK + 50 }, (_, i) => fit[i % fit.length]!.d);
  const capped = descriptorModel(many, prng(2));
  t.is(capped.bank.length, MAX_DESCRIPTOR_BANK * DESCRIPTOR_DIM);
  t.true(Array.from(capped.bank).every((v) => Math.abs(v * 1e4 - Math.round(v * 1e4)) < 1e-6));
});

/** Largest |a - b| / max(|b|, 1e-300) over the crops' C++ descriptors against the oracle's; and how many values are identical. */
function compareWithOracle(items: { crops: { image?: Tensor<'uint8'>; mask?: Tensor<'uint8'>; descriptor?: Float64Array }[] }[]): { rel: number; identical: number; values: number; crops: number } {
  let rel = 0, identical = 0, values = 0, crops = 0;
  for (const it of items)
    for (const c of it.crops) {
      crops++;
      const oracle = regionDescriptor(c.image!, c.mask!);
      if (c.descriptor?.length !== DESCRIPTOR_DIM) throw new Error('a crop has no descriptor');
      for (let d = 0; d < DESCRIPTOR_DIM; d++) {
        values++;
        if (c.descriptor[d] === oracle[d]) identical++;
        rel = Math.max(rel, Math.abs(c.descriptor[d]! - oracle[d]!) / Math.max(Math.abs(oracle[d]!), 1e-300));
      }
    }
  return { rel, identical, values, crops };
}

test('C++ descriptors (extractRegions descriptors: true) equal the TypeScript oracle to 1e-14 on MTD crops and synthetic crops', async (t) => {
  const data = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true });
  // every class, a few images each: masks as maps, and the same masks through MEBin
  const byClass = new Map<string, typeof data.items>();
  for (const it of data.items) byClass.set(it.label!, [...(byClass.get(it.label!) ?? []), it]);
  const sample = [...byClass.values()].flatMap((list) => list.slice(0, 6));
  const synth = generateSynthetic({ types: 8, perType: 3, good: 3, size: 96, mapSize: 48, seed: 12 });
  const runs = [
    ['MTD, masks as maps', await extractRegions(sample.map((i) => i.image), sample.map((i) => i.map), { threads: 2, descriptors: true, masksAsMaps: true })],
    ['MTD, MEBin', await extractRegions(sample.map((i) => i.image), sample.map((i) => i.map), { threads: 2, descriptors: true })],
    ['synthetic', await extractRegions(synth.map((s) => s.image), synth.map((s) => s.map), { threads: 2, descriptors: true })],
  ] as const;
  for (const [name, r] of runs) {
    const c = compareWithOracle(r.items);
    t.log(`${name}: ${c.crops} crops, ${c.identical} of ${c.values} values identical, largest relative difference ${c.rel.toExponential(2)}`);
    t.true(c.crops >= sample.length / 2);
    t.true(c.rel <= 1e-14, name);
    t.true(r.timings.descriptorMsPerImage > 0);
  }
  // an empty map's whole-image crop is flagged empty, as by the oracle
  const empty = runs[2][1].items.flatMap((it) => it.crops).filter((c) => c.maskArea === 0);
  for (const c of empty) t.is(c.descriptor![at('empty')], 1);
  // off by default: no descriptor, no time
  const plain = await extractRegions(synth.slice(0, 3).map((s) => s.image), synth.slice(0, 3).map((s) => s.map), { threads: 1 });
  t.true(plain.items.every((it) => it.crops.every((c) => c.descriptor === undefined)));
  t.is(plain.timings.descriptorMsPerImage, 0);
  await t.throwsAsync(extractRegions([synth[0]!.image], [synth[0]!.map], { descriptors: 'yes' as never }), { instanceOf: InvalidArgumentError, message: /descriptors/ });
});
