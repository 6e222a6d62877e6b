// Region descriptors in discover / predict (issue 11): kFeatures for the K estimators, the
// `descriptor` novelty score calibrated on held-out images, its statistics and bank in the
// bundle (round trip; bundles written before these fields load with them empty), the CLI
// flags and typed errors.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DESCRIPTOR_DIM } from '../ts/analysis/descriptors.js';
import { auroc, calibrateThreshold } from '../ts/analysis/novelty.js';
import { InvalidArgumentError } from '../ts/core/errors.js';
import { Tensor } from '../ts/core/tensor.js';
import { generateSynthetic } from '../ts/io/synthetic.js';
import { discover, predict } from '../ts/stages/discover.js';
import { loadTrainedModel } from '../ts/stages/train.js';
import { cli, tempDir } from './helpers.js';

const TINY_ARCH = { patchSize: 16, embedDim: 64, depth: 2, numHeads: 2, maskLayers: 1 };

/** A type the synthetic generator never draws: thin bright diagonal lines on the generator's background. */
function lineImages(n: number, seed: number) {
  const base = generateSynthetic({ perType: n, good: 0, size: 64, mapSize: 32, seed }).slice(0, n);
  return base.map((s, i) => {
    const img = Uint8Array.from(s.image.data);
    const mask = new Uint8Array(64 * 64);
    const off = 8 + ((i * 7) % 20);
    for (let x = 10; x < 54; x++)
      for (const dy of [0, 1]) {
        const y = Math.min(63, Math.round(off + 0.6 * x) + dy);
        mask[y * 64 + x] = 255;
        img.fill(250, 3 * (y * 64 + x), 3 * (y * 64 + x) + 3);
      }
    return { image: new Tensor('uint8', [64, 64, 3], img), map: new Tensor('uint8', [64, 64], mask), label: 'line' };
  });
}

/** Rewrites a bundle's `anomalyncd.inference` metadata without the given keys (as a bundle written before they existed). */
function dropInferenceKeys(path: string, keys: string[]): void {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const inf = JSON.parse(header.__metadata__['anomalyncd.inference']);
  for (const k of keys) delete inf[k];
  header.__metadata__['anomalyncd.inference'] = JSON.stringify(inf);
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8) text += ' ';
  const h = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, buf.subarray(8 + n)]));
}

test('discover: descriptor novelty is calibrated on held-out images, ranks a new shape higher, and travels with the bundle', async (t) => {
  const known = generateSynthetic({ perType: 6, good: 0, size: 64, mapSize: 32, seed: 3 }).map((s) => ({ image: s.image, map: s.mask, label: s.label as string }));
  const result = await discover(known, { k: 4, masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 2, threads: 2, holdout: 0.25, falseAlarmRate: 0.1, noveltyScore: 'descriptor' });
  try {
    const inf = result.model.inference!;
    t.is(inf.noveltyScore, 'descriptor');
    t.is(inf.descriptorMean.length, DESCRIPTOR_DIM);
    t.is(inf.descriptorScale.length, DESCRIPTOR_DIM);
    // The bank: one standardised descriptor per fit crop (held-out images' crops excluded).
    const fitCrops = result.crops.filter((c) => !result.images[c.image]!.heldOut).length;
    t.is(inf.descriptorBank.length, fitCrops * DESCRIPTOR_DIM);
    const held = result.images.filter((i) => i.heldOut);
    t.is(result.calibration!.threshold, calibrateThreshold(held.map((i) => i.novelty), 0.1));
    t.is(result.calibration!.score, 'descriptor');
    t.true(typeof result.timings.descriptors === 'number');

    const fresh = generateSynthetic({ perType: 3, good: 0, size: 64, mapSize: 32, seed: 99 }).map((s) => ({ image: s.image, map: s.mask }));
    const lines = lineImages(8, 5);
    const pk = await predict(result.model, fresh.map((i) => i.image), fresh.map((i) => i.map), { threads: 2 });
    const pn = await predict(result.model, lines.map((i) => i.image), lines.map((i) => i.map), { threads: 2 });
    const a = auroc(pn.map((p) => p.novelty), pk.map((p) => p.novelty));
    t.true(a > 0.9, `AUROC lines vs known ${a}`);
    t.true(pn.filter((p) => p.unknown).length > pk.filter((p) => p.unknown).length);

    const dir = tempDir();
    const path = join(dir, 'desc.safetensors');
    await result.model.save(path);
    const loaded = await loadTrainedModel(path);
    try {
      t.deepEqual(loaded.inference, result.model.inference);
      const again = await predict(loaded, lines.map((i) => i.image), lines.map((i) => i.map), { threads: 2 });
      again.forEach((p, i) => {
        t.is(p.novelty, pn[i]!.novelty);
        t.is(p.unknown, pn[i]!.unknown);
      });
    } finally {
      loaded.dispose();
    }
    // A bundle written before the descriptor fields existed: loads with them empty; the
    // descriptor score then falls back to the head's cosine distance, uncalibrated.
    dropInferenceKeys(path, ['descriptorMean', 'descriptorScale', 'descriptorBank']);
    const old = await loadTrainedModel(path);
    try {
      t.deepEqual(old.inference!.descriptorBank, []);
      t.deepEqual(old.inference!.descriptorMean, []);
      t.is(old.inference!.featureMean.length, TINY_ARCH.embedDim);
      const p = await predict(old, lines.map((i) => i.image), lines.map((i) => i.map), { threads: 2 });
      t.true(p.every((x) => x.unknown === null && Number.isFinite(x.novelty)));
    } finally {
      old.dispose();
    }
    // An inconsistent record is refused as a corrupt bundle.
    await result.model.save(path);
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const infJson = JSON.parse(header.__metadata__['anomalyncd.inference']);
    infJson.descriptorScale = infJson.descriptorScale.slice(1);
    header.__metadata__['anomalyncd.inference'] = JSON.stringify(infJson);
    let text = JSON.stringify(header);
    while ((8 + Buffer.byteLength(text)) % 8) text += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    writeFileSync(path, Buffer.concat([len, Buffer.from(text), buf.subarray(8 + n)]));
    await t.throwsAsync(loadTrainedModel(path), { message: /inference is invalid/ });
  } finally {
    result.model.dispose();
  }
});

test('discover: kFeatures descriptors / both estimate K on the region descriptors; bad values are typed errors', async (t) => {
  const items = generateSynthetic({ perType: 5, good: 0, size: 64, mapSize: 32, seed: 7 }).map((s) => ({ image: s.image, map: s.mask, label: s.label as string }));
  for (const kFeatures of ['descriptors', 'both'] as const) {
    const r = await discover(items, { k: 'auto', kMethod: 'silhouette', kFeatures, kRange: [2, 6], masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2, holdout: 0 });
    try {
      t.is(r.kChoice.features, kFeatures);
      t.is(r.kChoice.curve!.length, 5);
      t.true(r.k >= 2 && r.k <= 6);
    } finally {
      r.model.dispose();
    }
  }
  // The same run on the backbone gives its own curve (the option reaches the estimator);
  // without kFeatures (and kMethod) the defaults apply: bic on descriptors.
  const b = await discover(items, { k: 'auto', kMethod: 'silhouette', kFeatures: 'backbone', kRange: [2, 6], masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2, holdout: 0 });
  const d = await discover(items, { k: 'auto', kRange: [2, 6], masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2, holdout: 0 });
  try {
    t.is(b.kChoice.features, 'backbone');
    t.is(d.kChoice.features, 'descriptors');
    t.is(d.kChoice.method, 'bic');
    t.regex(d.kChoice.scoreName!, /BIC/);
    // 20 images: too few for bic's mixtures, and the run says so (the silhouette run does not).
    t.true(d.warnings.some((w) => /kMethod 'bic' chose K = \d+ from 20 images/.test(w) && /eigengap/.test(w)), d.warnings.join('\n'));
    t.false(b.warnings.some((w) => /kMethod 'bic'/.test(w)));
    t.notDeepEqual(b.kChoice.curve, d.kChoice.curve);
  } finally {
    b.model.dispose();
    d.model.dispose();
  }
  await t.throwsAsync(discover(items, { k: 'auto', kFeatures: 'pixels' as never }), { instanceOf: InvalidArgumentError, message: /kFeatures/ });
  await t.throwsAsync(discover(items, { k: 2, noveltyScore: 'knn' as never }), { instanceOf: InvalidArgumentError, message: /noveltyScore/ });
});

test('CLI: --k-features needs --k auto, bad values and bad --novelty-score are usage errors (exit 2)', (t) => {
  const out = join(tempDir(), 'run');
  const base = ['discover', '--dataset', 'synthetic', '--out', out, '--masks-as-maps'];
  t.is(cli([...base, '--k', '3', '--k-features', 'descriptors']).status, 2);
  const bad = cli([...base, '--k', 'auto', '--k-features', 'pixels']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /k-features/);
  t.is(cli([...base, '--k', '3', '--novelty-score', 'knn']).status, 2);
  // A run with both flags: the K choice names its features.
  const ok = cli([...base, '--per-type', '3', '--k', 'auto', '--k-method', 'silhouette', '--k-features', 'both', '--novelty-score', 'descriptor', '--arch', JSON.stringify(TINY_ARCH), '--epochs', '1', '--threads', '2', '--json']);
  t.is(ok.status, 0, ok.stderr);
  const predictions = JSON.parse(readFileSync(join(out, 'predictions.json'), 'utf8'));
  t.is(predictions.kChoice.features, 'both');
  t.is(predictions.kChoice.method, 'silhouette');
});
