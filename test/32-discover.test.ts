import test from 'ava';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortError, discover, evaluate, generateSynthetic, InvalidArgumentError, loadDataset, loadLabelledManifest, mergeRegions, predict } from 'anomalyncd';
import { cli, mtdDir, tempDir } from './helpers.js';

const TINY_ARCH = { patchSize: 16, embedDim: 64, depth: 2, numHeads: 2, maskLayers: 1 };

test('region merging: area-weighted softmax, single region passthrough, first index on ties (METHOD.md §7, T27)', (t) => {
  const one = mergeRegions([{ probabilities: [0.2, 0.5, 0.3], maskArea: 10 }], 50);
  t.is(one.cluster, 1);
  t.deepEqual(Array.from(one.probabilities), [0.2, 0.5, 0.3]);
  // sqrt(2500)/50 = 1, sqrt(0)/50 = 0: weights e/(e+1), 1/(e+1).
  const two = mergeRegions(
    [
      { probabilities: [1, 0], maskArea: 2500 },
      { probabilities: [0, 1], maskArea: 0 },
    ],
    50,
  );
  t.true(Math.abs(two.weights[0]! - Math.E / (Math.E + 1)) < 1e-15);
  t.is(two.cluster, 0);
  const tie = mergeRegions(
    [
      { probabilities: [0.5, 0.5], maskArea: 4 },
      { probabilities: [0.5, 0.5], maskArea: 4 },
    ],
    100,
  );
  t.is(tie.cluster, 0);
  t.throws(() => mergeRegions([], 50), { instanceOf: InvalidArgumentError });
  t.throws(() => mergeRegions([{ probabilities: [1], maskArea: 1 }], 0), { instanceOf: InvalidArgumentError });
});

test('discover on MTD with ground-truth masks as maps: every image predicted, metrics consistent with evaluate()', async (t) => {
  const data = await loadDataset({ kind: 'mtd', root: mtdDir, groundTruthAsMaps: true });
  t.is(data.items.length, 583);
  // A class-balanced subset keeps CI fast; the full run lives in bench/discover.bench.ts.
  const perClass = new Map<string, number>();
  const subset = data.items.filter((i) => {
    const n = perClass.get(i.label!) ?? 0;
    perClass.set(i.label!, n + 1);
    return n < 6;
  });
  t.is(subset.length, 36);
  const result = await discover(subset, { k: 6, arch: TINY_ARCH, epochs: 2, seed: 1, threads: 2 });
  try {
    t.is(result.images.length, 36);
    t.deepEqual(result.searchRange, [0, 255]);
    for (const img of result.images) {
      t.true(img.cluster >= 0 && img.cluster < 6);
      t.is(img.probabilities.length, 6);
      t.true(Math.abs(img.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      t.true(img.regions.length >= 1);
    }
    const truth = subset.map((i) => i.label!);
    const again = evaluate(truth, result.images.map((i) => i.cluster));
    t.is(result.metrics!.anomalyncd.nmi, again.nmi);
    t.is(result.metrics!.anomalyncd.f1, again.f1);
    t.true(result.metrics!.kmeansBaseline.f1 > 0);
    t.true(result.timings.training! > 0 && result.timings.regions! > 0);
    t.is(result.crops.length, result.images.reduce((n, i) => n + i.regions.length, 0));
    // New images, one at a time, with the search range saved in the model (METHOD.md T31).
    t.deepEqual(result.model.searchRange, [0, 255]);
    const picks = [0, 7, 20];
    const again1 = await predict(result.model, picks.map((i) => subset[i]!.image), picks.map((i) => subset[i]!.map), { threads: 2 });
    picks.forEach((i, j) => {
      t.is(again1[j]!.cluster, result.images[i]!.cluster);
      t.deepEqual(again1[j]!.regions.map((r) => r.box), result.images[i]!.regions.map((r) => r.box));
      again1[j]!.probabilities.forEach((p, c) => t.true(Math.abs(p - result.images[i]!.probabilities[c]!) < 1e-4));
    });
  } finally {
    result.model.dispose();
  }
});

test("discover --k auto estimates K, reports the curve, and writes the documented files", (t) => {
  const out = join(tempDir(), 'run');
  const r = cli(['discover', '--dataset', 'synthetic', '--per-type', '3', '--k', 'auto', '--out', out, '--arch', JSON.stringify(TINY_ARCH), '--epochs', '1', '--json']);
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.kChoice.mode, 'auto');
  t.true(summary.kChoice.curve.length >= 2);
  t.true(summary.k >= 2 && summary.k <= 10);
  t.true(summary.kChoice.curve.some((c: { k: number }) => c.k === summary.k));
  for (const f of ['predictions.json', 'metrics.json', 'timings.json', 'report.html']) t.true(existsSync(join(out, f)), f);
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  t.deepEqual(Object.keys(metrics), ['anomalyncd', 'kmeansBaseline']);
  t.deepEqual(Object.keys(metrics.anomalyncd), ['nmi', 'ari', 'f1']);
  t.regex(readFileSync(join(out, 'report.html'), 'utf8'), /<html/);
});

test('discover: bad input is typed and leaves no output; aborts are AbortErrors', async (t) => {
  const dir = tempDir();
  const bad = cli(['discover', '--dataset', 'mtd', '--root', join(dir, 'nope'), '--gt-maps', '--k', '3', '--out', join(dir, 'out')]);
  t.is(bad.status, 3, bad.stderr);
  t.false(existsSync(join(dir, 'out', 'predictions.json')));
  t.is(cli(['discover', '--dataset', 'synthetic', '--k', 'many', '--out', join(dir, 'o')]).status, 2);
  t.is(cli(['discover', '--k', '3', '--out', join(dir, 'o')]).status, 2);
  const samples = generateSynthetic({ perType: 1, good: 1, size: 64, mapSize: 32 });
  const items = samples.map((s) => ({ image: s.image, map: s.map, label: s.label }));
  await t.throwsAsync(discover(items, { k: 0 }), { instanceOf: InvalidArgumentError, message: /'k'/ });
  const controller = new AbortController();
  controller.abort();
  await t.throwsAsync(discover(items, { k: 2, arch: TINY_ARCH, epochs: 1, signal: controller.signal }), { instanceOf: AbortError });
});

test('a labelled set from a manifest (image,map,label): every crop carries its image label; unlabelled rows are refused', async (t) => {
  const dir = tempDir();
  const stems = ['MT_Crack', 'MT_Fray'].map((cls) => {
    const first = readdirSync(join(mtdDir, cls, 'Imgs')).filter((f) => f.endsWith('.jpg')).sort()[0]!;
    return [cls, first.slice(0, -4)] as const;
  });
  const csv = join(dir, 'labelled.csv');
  writeFileSync(csv, 'image,map,label\n' + stems.map(([cls, stem]) => `${join(mtdDir, cls, 'Imgs', stem + '.jpg')},${join(mtdDir, cls, 'Imgs', stem + '.png')},${cls.slice(3).toLowerCase()}`).join('\n'));
  const crops = await loadLabelledManifest(csv, { threads: 2 });
  t.true(crops.length >= 2);
  t.deepEqual([...new Set(crops.map((c) => c.label))].sort(), ['crack', 'fray']);
  for (const c of crops) t.deepEqual(c.mask.shape, c.image.shape.slice(0, 2));
  writeFileSync(join(dir, 'nolabel.csv'), `image,map,label\n${join(mtdDir, stems[0]![0], 'Imgs', stems[0]![1] + '.jpg')},${join(mtdDir, stems[0]![0], 'Imgs', stems[0]![1] + '.png')},\n`);
  await t.throwsAsync(loadLabelledManifest(join(dir, 'nolabel.csv')), { message: /line 2 has no label/ });
});
