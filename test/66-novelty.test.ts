// Open-set novelty (issue 11 item 3): the scores, the conformal threshold, the
// held-out calibration in discover, and bundles with and without a calibration.
import test from 'ava';
import { join } from 'node:path';
import { auroc, calibrateThreshold, cropNovelty, featurePrototypes, imageNovelty, prototypeNovelty } from '../ts/analysis/novelty.js';
import { regionWeights } from '../ts/analysis/merge.js';
import { discover, predict } from '../ts/stages/discover.js';
import { loadTrainedModel } from '../ts/stages/train.js';
import { Tensor } from '../ts/core/tensor.js';
import { generateSynthetic } from '../ts/io/synthetic.js';
import { prng, tempDir } from './helpers.js';

const TINY_ARCH = { patchSize: 16, embedDim: 64, depth: 2, numHeads: 2, maskLayers: 1 };

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

test('scores: energy and cosine distance of the cosine logits; image novelty uses the region weights', (t) => {
  t.is(cropNovelty([0.2, 0.9, -0.1], 'cosine'), 1 - 0.9);
  const e = cropNovelty([0.2, 0.9, -0.1], 'energy');
  const direct = -0.1 * Math.log(Math.exp(2) + Math.exp(9) + Math.exp(-1));
  t.true(Math.abs(e - direct) < 1e-12, `${e} vs ${direct}`);
  // Closer to a prototype -> less novel, for both scores.
  for (const s of ['energy', 'cosine'] as const) t.true(cropNovelty([0.1, 0.95], s) < cropNovelty([0.1, 0.3], s));
  t.is(imageNovelty([0.7], [10], 50), 0.7);
  const w = regionWeights([100, 2500], 50);
  t.true(Math.abs(imageNovelty([1, 3], [100, 2500], 50) - (w[0]! * 1 + w[1]! * 3)) < 1e-12);
  t.throws(() => cropNovelty([], 'energy'));
  // Prototypes: centred on the mean feature; a feature on a prototype's direction has novelty ~0.
  const feats = [[2, 0, 1], [2.2, 0, 1], [0, 2, 1], [0, 2.2, 1]];
  const protos = featurePrototypes(feats, [0, 0, 2, 2], 3);
  t.deepEqual(Array.from(protos.mean), [1.05, 1.05, 1]);
  t.is(protos.rows.length, 2); // cluster 1 is empty
  t.true(prototypeNovelty([2.1, 0, 1], protos) < 0.01);
  t.true(prototypeNovelty([1.05, 1.05, 3], protos) > 0.9); // orthogonal to both in the centred space
});

test('auroc: Mann-Whitney with ties, against brute force', (t) => {
  const rand = prng(7);
  const pos = Array.from({ length: 40 }, () => Math.round(normal(rand) * 3 + 1));
  const neg = Array.from({ length: 55 }, () => Math.round(normal(rand) * 3));
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  t.true(Math.abs(auroc(pos, neg) - wins / (pos.length * neg.length)) < 1e-12);
  t.is(auroc([2, 3], [0, 1]), 1);
  t.is(auroc([0, 1], [2, 3]), 0);
});

test('calibrateThreshold: the held-out false-alarm rate is near the target on fresh data', (t) => {
  const rand = prng(11);
  for (const alpha of [0.05, 0.1, 0.2]) {
    let far = 0;
    const trials = 20;
    for (let r = 0; r < trials; r++) {
      const cal = Array.from({ length: 400 }, () => normal(rand));
      const thr = calibrateThreshold(cal, alpha);
      const fresh = Array.from({ length: 2000 }, () => normal(rand));
      far += fresh.filter((s) => s > thr).length / fresh.length / trials;
    }
    // Conformal: E[FAR] <= alpha, and >= alpha - 1/(n+1).
    t.true(far <= alpha + 0.01 && far >= alpha - 0.015, `alpha ${alpha}: FAR ${far}`);
  }
  // Too few images for alpha: the largest score.
  t.is(calibrateThreshold([3, 1, 2], 0.05), 3);
  t.is(calibrateThreshold([5, 1, 4, 2, 3, 6, 7, 8, 9, 10], 0.2), 9); // k = ceil(11 * 0.8) = 9
  t.throws(() => calibrateThreshold([1], 0), { message: /false-alarm/ });
  t.throws(() => calibrateThreshold([], 0.05));
});

/** Known synthetic defect images, and a clearly novel type: saturated colour patches with a checkerboard inside the defect. */
function novelImages(n: number, seed: number) {
  const base = generateSynthetic({ perType: n, good: 0, size: 64, mapSize: 32, seed }).slice(0, n);
  return base.map((s) => {
    const img = new Uint8Array(s.image.data.length);
    for (let p = 0; p < 64 * 64; p++) {
      const y = Math.floor(p / 64), x = p % 64;
      const on = s.mask.data[p] ? ((x >> 2) + (y >> 2)) % 2 === 0 : false;
      img[3 * p] = on ? 255 : 230;
      img[3 * p + 1] = on ? 255 : 20;
      img[3 * p + 2] = on ? 0 : 200;
    }
    return { image: new Tensor('uint8', [64, 64, 3], img), map: s.mask, label: 'novel' };
  });
}

test('discover calibrates on held-out images; a clearly novel type scores higher; the bundle keeps the calibration, older bundles load uncalibrated', async (t) => {
  const known = generateSynthetic({ perType: 6, good: 4, size: 64, mapSize: 32, seed: 3 }).map((s) => ({ image: s.image, map: s.mask, label: s.label as string }));
  const result = await discover(known, { k: 6, masksAsMaps: true, arch: TINY_ARCH, epochs: 3, seed: 2, threads: 2, holdout: 0.25, falseAlarmRate: 0.1, noveltyScore: 'prototype' });
  try {
    const held = result.images.filter((i) => i.heldOut);
    t.is(held.length, Math.round(known.length * 0.25));
    t.truthy(result.calibration);
    const cal = result.calibration!;
    t.is(cal.images, held.length);
    t.is(cal.falseAlarmRate, 0.1);
    // The threshold is the conformal quantile of the held-out images' novelty.
    t.is(cal.threshold, calibrateThreshold(held.map((i) => i.novelty), 0.1));
    t.true(held.filter((i) => i.unknown).length <= Math.floor(0.1 * held.length) + 1);
    for (const img of result.images) {
      t.is(img.unknown, img.novelty > cal.threshold);
      t.true(Number.isFinite(img.novelty));
      for (const r of img.regions) t.true(Number.isFinite(r.novelty));
    }
    const { featureMean, prototypes, descriptorMean, descriptorScale, descriptorBank, ...rest } = result.model.inference!;
    t.true(descriptorMean.length > 0 && descriptorScale.length === descriptorMean.length && descriptorBank.length % descriptorMean.length === 0);
    t.deepEqual(rest, { masksAsMaps: true, maskLevel: 128, noveltyScore: 'prototype', noveltyThreshold: cal.threshold, falseAlarmRate: 0.1, calibrationImages: held.length, tauAlpha: 50 });
    t.is(featureMean.length, TINY_ARCH.embedDim);
    t.true(prototypes.length > 0 && prototypes.length % TINY_ARCH.embedDim === 0 && prototypes.length <= 6 * TINY_ARCH.embedDim);

    // New images: fresh known ones vs a clearly novel type.
    const fresh = generateSynthetic({ perType: 2, good: 2, size: 64, mapSize: 32, seed: 99 }).map((s) => ({ image: s.image, map: s.mask }));
    const novel = novelImages(8, 5);
    const pk = await predict(result.model, fresh.map((i) => i.image), fresh.map((i) => i.map), { threads: 2 });
    const pn = await predict(result.model, novel.map((i) => i.image), novel.map((i) => i.map), { threads: 2 });
    const a = auroc(pn.map((p) => p.novelty), pk.map((p) => p.novelty));
    t.true(a > 0.8, `AUROC novel vs known ${a}`);
    t.true(pn.filter((p) => p.unknown).length > pk.filter((p) => p.unknown).length);

    // Round trip: the calibration travels with the bundle.
    const dir = tempDir();
    await result.model.save(join(dir, 'cal.safetensors'));
    const loaded = await loadTrainedModel(join(dir, 'cal.safetensors'));
    try {
      t.deepEqual(loaded.inference, result.model.inference);
      const again = await predict(loaded, novel.map((i) => i.image), novel.map((i) => i.map), { threads: 2 });
      again.forEach((p, i) => {
        t.true(Math.abs(p.novelty - pn[i]!.novelty) < 1e-5);
        t.is(p.unknown, pn[i]!.unknown);
      });
    } finally {
      loaded.dispose();
    }
    // A bundle without the record (as written before it existed): loads; novelty from the head (cosine), no unknown.
    const record = result.model.inference;
    delete result.model.inference;
    await result.model.save(join(dir, 'old.safetensors'));
    result.model.inference = record!;
    const old = await loadTrainedModel(join(dir, 'old.safetensors'));
    try {
      t.is(old.inference, undefined);
      const p = await predict(old, novel.map((i) => i.image), novel.map((i) => i.map), { masksAsMaps: true, threads: 2 });
      t.true(p.every((x) => x.unknown === null && Number.isFinite(x.novelty)));
    } finally {
      old.dispose();
    }
  } finally {
    result.model.dispose();
  }
});

test('discover: holdout 0 trains on every image and calibrates nothing; too few held-out images warn', async (t) => {
  const items = generateSynthetic({ perType: 1, good: 1, size: 64, mapSize: 32, seed: 4 }).map((s) => ({ image: s.image, map: s.mask }));
  const none = await discover(items, { k: 2, masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2, holdout: 0 });
  try {
    t.is(none.calibration, null);
    t.true(none.images.every((i) => !i.heldOut && i.unknown === null));
    t.is(none.model.inference?.calibrationImages, 0);
    t.is(none.model.inference?.noveltyScore, 'descriptor'); // the default (bench/RESULTS.md, open-set)
  } finally {
    none.model.dispose();
  }
  const few = await discover(items, { k: 2, masksAsMaps: true, arch: TINY_ARCH, epochs: 1, seed: 1, threads: 2 });
  try {
    t.is(few.calibration, null);
    t.true(few.warnings.some((w) => /holdout/.test(w)));
  } finally {
    few.model.dispose();
  }
  await t.throwsAsync(discover(items, { k: 2, holdout: 0.95 }), { message: /holdout/ });
  await t.throwsAsync(discover(items, { k: 2, falseAlarmRate: 0 }), { message: /falseAlarmRate/ });
});
