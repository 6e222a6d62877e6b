// discover with a backbone checkpoint: the architecture is read from a DINO-layout
// file when --arch is omitted, and the file is read once for features and training.
import test from 'ava';
import { join } from 'node:path';
import { discover, generateSynthetic } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { cli, tempDir, writeDinoCheckpoint } from './helpers.js';

/** A random DINO-layout ViT-S/16 state dict (keys as DINO's release files), saved with torch.save. */
test('discover with a DINO ViT-S/16 checkpoint and no arch: the architecture is read from it and the file is read once', async (t) => {
  const dir = tempDir();
  const ckpt = join(dir, 'dino_vits16_random.pth');
  writeDinoCheckpoint(ckpt, { dim: 384, depth: 12, patch: 16 });
  // The CLI first (a child forked after OpenBLAS has run in this process can deadlock
  // in OpenBLAS's fork handler): no --arch needed either.
  const r = cli(['discover', '--dataset', 'synthetic', '--per-type', '1', '--k', '2', '--out', join(dir, 'run'), '--backbone', ckpt, '--epochs', '1', '--threads', '2', '--json']);
  t.is(r.status, 0, r.stderr);
  const samples = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 32, seed: 3 });
  const items = samples.map((s) => ({ image: s.image, map: s.map, label: s.label }));
  const before = modelAddon().stats!().checkpointReads;
  const result = await discover(items, { k: 2, backbone: ckpt, epochs: 1, seed: 1, threads: 2, training: { batchSize: 4 } });
  try {
    t.is(modelAddon().stats!().checkpointReads - before, 1, 'one checkpoint read for features and training');
    t.like(result.backbone, { path: ckpt, archSource: 'checkpoint' });
    t.like(result.backbone.arch, { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, maskLayers: 9, imageSize: 224 });
    t.like(result.model.arch, { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6 });
    t.is(result.crops[0]!.frozen.length, 384);
    t.is(result.images.length, items.length);
  } finally {
    result.model.dispose();
  }
});
