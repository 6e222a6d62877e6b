// `anomalyncd predict` (issue 11 item 4): classifies new images with the bundle
// `discover` writes (DIR/model.safetensors), never trains; files, JSON keys, exit codes.
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSynthetic } from '../ts/io/synthetic.js';
import { cli, tempDir, writePng } from './helpers.js';

const TINY_ARCH = JSON.stringify({ patchSize: 16, embedDim: 64, depth: 2, numHeads: 2, maskLayers: 1 });

/** Synthetic images (RGB PNG) with their masks as maps (0/255 PNG), and manifests with and without labels. */
function writeSet(dir: string, seed: number, perType: number): { labelled: string; unlabelled: string; n: number } {
  const samples = generateSynthetic({ perType, good: 2, size: 64, mapSize: 32, seed });
  const lines = samples.map((s, i) => {
    writePng(join(dir, `img${i}.png`), 64, 64, s.image.data, 2);
    writePng(join(dir, `map${i}.png`), 64, 64, s.mask.data);
    return { image: `img${i}.png`, map: `map${i}.png`, label: s.label };
  });
  writeFileSync(join(dir, 'labelled.csv'), 'image,map,label\n' + lines.map((l) => `${l.image},${l.map},${l.label}`).join('\n') + '\n');
  writeFileSync(join(dir, 'unlabelled.csv'), 'image,map\n' + lines.map((l) => `${l.image},${l.map}`).join('\n') + '\n');
  return { labelled: join(dir, 'labelled.csv'), unlabelled: join(dir, 'unlabelled.csv'), n: samples.length };
}

test('discover writes model.safetensors; predict follows it: files, keys, same clusters, calibrated unknown flags', (t) => {
  const dir = tempDir();
  const train = writeSet(dir, 3, 4); // holdout 0.25 -> at least 5 calibration images
  const run = join(dir, 'run');
  const d = cli(['discover', '--manifest', train.labelled, '--k', '5', '--masks-as-maps', '--holdout', '0.25', '--arch', TINY_ARCH, '--epochs', '1', '--threads', '2', '--out', run, '--json']);
  t.is(d.status, 0, d.stderr);
  t.deepEqual(readdirSync(run).sort(), ['metrics.json', 'model.safetensors', 'predictions.json', 'report.html', 'timings.json']);
  const discovered = JSON.parse(readFileSync(join(run, 'predictions.json'), 'utf8'));
  t.is(discovered.calibration.images, Math.round(train.n * 0.25));

  // Predict on the same images (labels given): masks as maps come from the bundle's record.
  const out = join(dir, 'pred');
  const p = cli(['predict', '--model', join(run, 'model.safetensors'), '--manifest', train.labelled, '--out', out, '--device', 'auto', '--threads', '2', '--json']);
  t.is(p.status, 0, p.stderr);
  t.deepEqual(readdirSync(out).sort(), ['metrics.json', 'predictions.json']);
  const summary = JSON.parse(p.stdout);
  t.deepEqual(Object.keys(summary), ['out', 'k', 'images', 'unknown', 'metrics']);
  const json = JSON.parse(readFileSync(join(out, 'predictions.json'), 'utf8'));
  t.deepEqual(Object.keys(json), ['k', 'images']);
  t.is(json.k, 5);
  t.is(json.images.length, train.n);
  json.images.forEach((img: Record<string, unknown>, i: number) => {
    t.deepEqual(Object.keys(img), ['image', 'label', 'cluster', 'probabilities', 'novelty', 'unknown', 'regions']);
    t.is(img.cluster, discovered.images[i].cluster);
    t.true(Math.abs((img.novelty as number) - discovered.images[i].novelty) < 1e-5);
    t.is(img.unknown, discovered.images[i].unknown);
    t.is(typeof img.unknown, 'boolean');
    for (const r of img.regions as Record<string, unknown>[]) t.deepEqual(Object.keys(r), ['box', 'cluster', 'probability', 'novelty']);
  });
  t.is(summary.unknown, json.images.filter((i: { unknown: boolean }) => i.unknown).length);
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  t.deepEqual(Object.keys(metrics), ['anomalyncd']);
  t.deepEqual(Object.keys(metrics.anomalyncd), ['nmi', 'ari', 'f1']);

  // New, unlabelled images: predictions.json only, no label keys.
  const fresh = join(dir, 'fresh');
  mkdirSync(join(dir, 'new'));
  const newSet = writeSet(join(dir, 'new'), 8, 1);
  const q = cli(['predict', '--model', join(run, 'model.safetensors'), '--manifest', newSet.unlabelled, '--out', fresh, '--threads', '2']);
  t.is(q.status, 0, q.stderr);
  t.deepEqual(readdirSync(fresh), ['predictions.json']);
  const qj = JSON.parse(readFileSync(join(fresh, 'predictions.json'), 'utf8'));
  t.is(qj.images.length, newSet.n);
  for (const img of qj.images) t.false('label' in img);
});

test('predict: usage errors exit 2, a missing bundle 3, a bad bundle 4; nothing is written', (t) => {
  const dir = tempDir();
  const set = writeSet(dir, 1, 1);
  const out = join(dir, 'out');
  t.is(cli(['predict', '--manifest', set.unlabelled, '--out', out]).status, 2); // no --model
  t.is(cli(['predict', '--model', 'x.safetensors', '--out', out]).status, 2); // no --manifest
  t.is(cli(['predict', '--model', 'x.safetensors', '--manifest', set.unlabelled, '--out', out, '--device', 'tpu']).status, 2);
  t.is(cli(['predict', '--model', 'x.safetensors', '--manifest', set.unlabelled, '--out', out, '--mask-level', '9']).status, 2);
  const missing = cli(['predict', '--model', join(dir, 'nope.safetensors'), '--manifest', set.unlabelled, '--out', out]);
  t.is(missing.status, 3, missing.stderr);
  t.regex(missing.stderr, /ERR_IO/);
  writeFileSync(join(dir, 'bad.safetensors'), 'not a bundle at all');
  const bad = cli(['predict', '--model', join(dir, 'bad.safetensors'), '--manifest', set.unlabelled, '--out', out]);
  t.is(bad.status, 4, bad.stderr);
  t.regex(bad.stderr, /ERR_CHECKPOINT/);
  t.false(existsSync(out));
  t.regex(cli(['predict', '--help']).stdout, /--model BUNDLE/);
});
