// K estimation through discover() (kMethod) and the CLI (--k auto --k-method): the chosen
// method, its curve, score name and cost reach the result, predictions.json and the report;
// mass trains an over-provisioned head (a tiny fit); gcd needs a labelled set; --k-method
// needs --k auto; an explicit k is untouched. Tiny random-init ViTs and 1 epoch: these tests
// check the contract, not the estimate's quality (that is bench/k-estimation.bench.ts).
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { discover, estimateKByMass, extractRegions, generateSynthetic, InvalidArgumentError, K_METHODS } from 'anomalyncd';
import { cli, tempDir } from './helpers.js';

const TINY_ARCH = { patchSize: 16, embedDim: 32, depth: 1, numHeads: 2, maskLayers: 1 };
const samples = generateSynthetic({ types: 3, perType: 3, good: 0, size: 64, mapSize: 32, seed: 11 });
const items = samples.map((s) => ({ image: s.image, map: s.map, label: s.label, name: s.name }));

test("discover({k: 'auto', kMethod: 'mass'}) trains the over-provisioned head, counts mass, then trains with that K", async (t) => {
  const events: number[] = [];
  const r = await discover(items, {
    k: 'auto',
    kMethod: 'mass',
    kRange: [2, 5],
    arch: TINY_ARCH,
    epochs: 1,
    seed: 1,
    threads: 1,
    onTrainEvent: (e) => {
      if (e.type === 'epoch') events.push(e.epoch);
    },
  });
  try {
    t.is(r.kChoice.mode, 'auto');
    t.is(r.kChoice.method, 'mass');
    // The curve: each of the kMax = 5 clusters' share of the images, largest first.
    t.deepEqual(r.kChoice.curve!.map((c) => c.k), [1, 2, 3, 4, 5]);
    const shares = r.kChoice.curve!.map((c) => c.score);
    t.true(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    t.deepEqual(shares, [...shares].sort((a, b) => b - a));
    // K = the clusters with at least 1/(2*5) of the images, kept within kRange.
    const counted = shares.filter((s) => s >= 0.1).length;
    t.is(r.k, Math.min(5, Math.max(2, counted)));
    t.true(r.kChoice.ms! > 0 && r.timings.estimateK! >= r.kChoice.ms! - 1);
    t.regex(r.kChoice.scoreName!, /share/);
    // The final model has K clusters; the over-provisioned one reported no events to onTrainEvent.
    t.is(r.model.novelClasses.length, r.k);
    t.deepEqual(events, [0]);
    t.is(r.images[0]!.probabilities.length, r.k);
  } finally {
    r.model.dispose();
  }
});

test('discover: kMethod gcd needs a labelled set; a bad kMethod is typed; an explicit k ignores kMethod', async (t) => {
  await t.throwsAsync(discover(items, { k: 'auto', kMethod: 'gcd', arch: TINY_ARCH, epochs: 1, threads: 1 }), { instanceOf: InvalidArgumentError, message: /labelled/ });
  await t.throwsAsync(discover(items, { k: 'auto', kMethod: 'nope' as 'gcd', arch: TINY_ARCH, epochs: 1, threads: 1 }), { instanceOf: InvalidArgumentError, message: /kMethod/ });
  const r = await discover(items, { k: 3, kMethod: 'eigengap', arch: TINY_ARCH, epochs: 1, seed: 2, threads: 1 });
  try {
    t.deepEqual(r.kChoice, { mode: 'given' });
    t.is(r.k, 3);
    t.false('estimateK' in r.timings);
  } finally {
    r.model.dispose();
  }
});

test("discover({kMethod: 'gcd'}) embeds the labelled crops and searches K on the union", async (t) => {
  const known = samples.filter((s) => s.label === 'scratch' || s.label === 'spot');
  const regions = await extractRegions(known.map((s) => s.image), known.map((s) => s.map), { threads: 1 });
  const labelled = regions.items.flatMap((it, j) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, label: known[j]!.label })));
  const r = await discover(items, { k: 'auto', kMethod: 'gcd', kRange: [2, 6], labelled, arch: TINY_ARCH, epochs: 1, seed: 3, threads: 1 });
  try {
    t.is(r.kChoice.method, 'gcd');
    const ks = r.kChoice.curve!.map((c) => c.k);
    t.is(ks[0], 2);
    t.true(ks.includes(r.k));
    t.true(r.kChoice.curve!.every((c) => c.score >= 0 && c.score <= 1));
    t.regex(r.kChoice.scoreName!, /labelled/);
  } finally {
    r.model.dispose();
  }
});

test('estimateKByMass: a tiny fit with kMax clusters, the count and its curve', async (t) => {
  const regions = await extractRegions(items.map((i) => i.image), items.map((i) => i.map), { threads: 1 });
  const unlabelled = regions.items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  const r = await estimateKByMass({ unlabelled }, { kMax: 4, arch: TINY_ARCH, epochs: 1, seed: 4, threads: 1, massThreshold: 0.2 });
  t.is(r.method, 'mass');
  t.deepEqual(r.curve.map((c) => c.k), [1, 2, 3, 4]);
  t.is(r.k, Math.max(1, r.curve.filter((c) => c.score >= 0.2).length));
  t.is(r.model, undefined);
  await t.throwsAsync(estimateKByMass({ unlabelled }, { kMax: 1 }), { instanceOf: InvalidArgumentError, message: /kMax/ });
});

test('CLI: --k auto --k-method picks the method; predictions.json, the JSON summary and the report show it', (t) => {
  const out = join(tempDir(), 'run');
  const r = cli(['discover', '--dataset', 'synthetic', '--per-type', '2', '--k', 'auto', '--k-method', 'eigengap', '--out', out, '--arch', JSON.stringify(TINY_ARCH), '--epochs', '1', '--threads', '1', '--json']);
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.kChoice.mode, 'auto');
  t.is(summary.kChoice.method, 'eigengap');
  t.true(summary.kChoice.curve.some((c: { k: number }) => c.k === summary.k));
  t.true(summary.kChoice.ms > 0);
  const pred = JSON.parse(readFileSync(join(out, 'predictions.json'), 'utf8'));
  t.is(pred.kChoice.method, 'eigengap');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  t.regex(html, /eigengap/);
  t.regex(html, /chosen K = \d+/);
  // The flag's contract: one name per method, --k auto required, unknown names rejected (usage errors, exit 2).
  const help = cli(['discover', '--help']);
  for (const m of K_METHODS) t.true(help.stdout.includes(m), `--help lists ${m}`);
  const dir = tempDir();
  t.is(cli(['discover', '--dataset', 'synthetic', '--k', 'auto', '--k-method', 'elbow', '--out', join(dir, 'a')]).status, 2);
  t.is(cli(['discover', '--dataset', 'synthetic', '--k', '3', '--k-method', 'silhouette', '--out', join(dir, 'b')]).status, 2);
  t.false(existsSync(join(dir, 'b', 'predictions.json')));
});

test('discover refuses an unknown option (a typo is not silently ignored) and names the closest one', async (t) => {
  const e = await t.throwsAsync(discover(items, { k: 'auto', kMethd: 'bic' } as never), { instanceOf: InvalidArgumentError });
  t.regex(e!.message, /unknown option 'kMethd' \(did you mean 'kMethod'\?\)/);
  await t.throwsAsync(discover(items, { k: 3, colour: 'red' } as never), { instanceOf: InvalidArgumentError, message: /unknown option 'colour'; known options: .*kMethod/ });
});
