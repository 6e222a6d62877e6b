// A short real training run on MTD crops (ground-truth masks, thresholded at 128, as
// anomaly maps through extractRegions), a tiny random-init ViT on the CPU; then the
// `train` command on the same crops with a labelled folder.
import test from 'ava';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractRegions, fit, loadLabelledFolder, loadTrainedModel, readCropFiles, Tensor, type TrainEvent } from 'anomalyncd';
import { cmdTrain } from '../ts/cli/commands/train.js';
import { MTD_CLASSES, mtdDir, mtdTestStems, tempDir } from './helpers.js';

const PER_CLASS = 6;
const ARCH = { patchSize: 16, embedDim: 64, depth: 4, numHeads: 4, maskLayers: 2 };

async function mtdRegions(cropDir: string) {
  const rows = mtdTestStems(PER_CLASS);
  const decoded = await readCropFiles(
    rows.map((r) => join(mtdDir, r.cls, 'Imgs', `${r.stem}.jpg`)),
    rows.map((r) => join(mtdDir, r.cls, 'Imgs', `${r.stem}.png`)),
    { threads: 2 },
  );
  const maps = decoded.map((d) => new Tensor('uint8', d.mask.shape, Uint8Array.from(d.mask.data, (v) => (v >= 128 ? 255 : 0))));
  const result = await extractRegions(
    decoded.map((d) => d.image),
    maps,
    { threads: 2, cropDir, names: rows.map((r, i) => `${String(i).padStart(3, '0')}_${r.cls}_${r.stem}`) },
  );
  return { rows, result };
}

test('training on ~40 MTD crops: the loss falls, events and history are consistent, predictions are distributions', async (t) => {
  const dir = tempDir();
  const { result } = await mtdRegions(join(dir, 'crops'));
  const crops = result.items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  t.true(crops.length >= 30 && crops.length <= 60, `${crops.length} crops`);
  t.true(crops.some((c) => c.score < 0.5) && crops.some((c) => c.score >= 0.5), 'PLC applies to some crops only');

  const events: TrainEvent[] = [];
  const model = await fit(
    { unlabelled: crops },
    {
      k: 6,
      novelClassNames: MTD_CLASSES,
      arch: ARCH,
      gradFromBlock: 2,
      epochs: 4,
      batchSize: 16,
      teacherTemp: { warmupEpochs: 4, repeatTimes: 2 },
      projHidden: 256,
      projOut: 64,
      seed: 3407,
      threads: 1,
      searchRange: result.searchRange,
      onProgress: (e) => events.push(e),
    },
  );
  t.true(model.warnings.some((w) => /randomly initialised/.test(w)));
  t.deepEqual(model.classNames, MTD_CLASSES);
  t.deepEqual(model.knownClasses, []);
  t.is(model.history.length, 4);
  const perEpoch = Math.ceil(crops.length / 16);
  for (const h of model.history) {
    t.is(h.batches, perEpoch, 'no labelled set: no batch is skipped');
    t.is(h.skipped, 0);
    t.is(h.losses.supCon, 0);
    t.deepEqual(h.losses.ce, [0, 0, 0, 0]);
    t.is(h.losses.cluster.length, 4);
    t.true(Number.isFinite(h.losses.total));
  }
  const totals = model.history.map((h) => h.losses.total);
  t.true(totals[3]! < totals[0]!, `total loss per epoch: ${totals.join(', ')}`);
  // lr: cosine over 4 epochs from the reference 0.003; teacher temperature ramp of 2 values held 2 epochs each
  model.history.forEach((h, e) => t.true(Math.abs(h.lr - (3e-6 + (0.003 - 3e-6) * (1 + Math.cos((Math.PI * e) / 4)) / 2)) < 1e-15));
  t.deepEqual(model.history.map((h) => h.teacherTemp), [0.07, 0.07, 0.04, 0.04]);
  // events: one per batch, one per epoch, epoch means = history
  t.is(events.filter((e) => e.type === 'batch').length, 4 * perEpoch);
  const epochEvents = events.filter((e) => e.type === 'epoch');
  t.deepEqual(epochEvents.map((e) => e.losses), model.history.map((h) => h.losses));
  const b0 = events.filter((e) => e.type === 'batch' && e.epoch === 0);
  t.true(Math.abs(b0.reduce((s, e) => s + e.losses.total, 0) / b0.length - totals[0]!) < 1e-9);
  t.is(b0[0]!.rows, 32);
  // METHOD.md §4.5: the selected head has the minimum last-epoch clustering loss
  const cl = model.history[3]!.losses.cluster;
  t.is(model.selectedHead, cl.indexOf(Math.min(...cl)));
  t.deepEqual(model.searchRange, result.searchRange);

  const pred = await model.predict(crops, { threads: 1 });
  t.is(pred.probabilities.length, crops.length);
  t.is(pred.head, model.selectedHead);
  for (const p of pred.probabilities) {
    t.is(p.length, 6);
    t.true(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  }
  model.dispose();
});

test('`anomalyncd train` on a regions.json with a labelled folder writes a loadable bundle', async (t) => {
  const dir = tempDir();
  const { rows, result } = await mtdRegions(join(dir, 'out', 'crops'));
  const json = {
    searchRange: result.searchRange,
    items: result.items.map((it) => ({ crops: it.crops.map((c) => ({ image: `crops/${c.imageFile}`, mask: `crops/${c.maskFile}`, maskArea: c.maskArea, score: c.score })) })),
  };
  const regionsPath = join(dir, 'out', 'regions.json');
  writeFileSync(regionsPath, JSON.stringify(json));
  // A labelled folder from two classes' crops (images/<class>/, masks/<class>/).
  const lab = join(dir, 'labelled');
  result.items.forEach((it, i) => {
    const cls = rows[i]!.cls;
    if (cls !== 'MT_Blowhole' && cls !== 'MT_Crack') return;
    for (const c of it.crops) {
      const name = c.imageFile!.split('/').pop()!;
      for (const kind of ['images', 'masks']) mkdirSync(join(lab, kind, cls.slice(3).toLowerCase()), { recursive: true });
      copyFileSync(join(dir, 'out', 'crops', c.imageFile!), join(lab, 'images', cls.slice(3).toLowerCase(), name));
      copyFileSync(join(dir, 'out', 'crops', c.maskFile!), join(lab, 'masks', cls.slice(3).toLowerCase(), name));
    }
  });
  const labelled = await loadLabelledFolder(lab);
  t.deepEqual([...new Set(labelled.map((c) => c.label))], ['blowhole', 'crack']);
  t.is(labelled[0]!.image.shape[2], 3);

  const out = join(dir, 'model.safetensors');
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  const errChunks: string[] = [];
  process.stdout.write = ((s: string) => (chunks.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (errChunks.push(String(s)), true)) as typeof process.stderr.write;
  try {
    await cmdTrain(
      ['--crops', regionsPath, '--k', '6', '--out', out, '--labeled', lab, '--arch', JSON.stringify(ARCH), '--epochs', '2', '--batch-size', '16', '--seed', '1', '--threads', '1', '--json'],
      new AbortController().signal,
    );
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  const summary = JSON.parse(chunks.join('')) as { out: string; crops: number; labelled: number; classNames: string[]; epochs: number; history: { total: number }[] };
  t.is(summary.out, out);
  t.is(summary.labelled, labelled.length);
  t.deepEqual(summary.classNames.slice(0, 2), ['blowhole', 'crack']);
  t.is(summary.classNames.length, 8);
  t.is(summary.epochs, 2);
  t.true(errChunks.join('').includes('epoch 2/2'));
  t.true(existsSync(out));
  const model = await loadTrainedModel(out);
  t.is(model.epochsDone, 2);
  t.deepEqual(model.knownClasses, ['blowhole', 'crack']);
  t.deepEqual(model.searchRange, result.searchRange);
  const h = model.history[1]!;
  t.true(h.losses.supCon > 0 && h.losses.ce.every((v) => v > 0), 'labelled terms are active');
  t.true(h.batches + h.skipped === Math.ceil((summary.crops + summary.labelled) / 16));
  const p = await model.predict(labelled.slice(0, 3).map((c) => ({ image: c.image, mask: c.mask })));
  t.is(p.probabilities[0]!.length, 6);
  model.dispose();
  await t.throwsAsync(cmdTrain(['--crops', regionsPath, '--out', out], new AbortController().signal), { message: /--k/ });
});
