// The one backbone loader: the architecture read from DINO-layout checkpoints when
// arch is omitted, and the checkpoint read counter (its own file: a process of its own).
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, loadBackbone, readNpy } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { repoRoot, tempDir, writeDinoCheckpoint } from './helpers.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'vit');

test('loadBackbone reads the architecture of a DINO checkpoint when arch is omitted, and counts checkpoint reads', async (t) => {
  const dir = tempDir();
  // Every checkpoint is written first: a child process forked after OpenBLAS has run
  // can deadlock in OpenBLAS's fork handler (0.3.21).
  const vits16 = join(dir, 'dino_vits16_random.pth');
  writeDinoCheckpoint(vits16, { dim: 384, depth: 12, patch: 16 });
  const vitb8 = join(dir, 'dino_vitb8_zeros.pth');
  writeDinoCheckpoint(vitb8, { dim: 768, depth: 12, patch: 8, zeros: true });
  const odd = join(dir, 'odd.pth');
  writeDinoCheckpoint(odd, { dim: 32, depth: 2, patch: 16 });
  const before = modelAddon().stats!().checkpointReads;
  const s16 = await loadBackbone(vits16);
  t.is(modelAddon().stats!().checkpointReads, before + 1);
  t.like(s16.config, { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, maskLayers: 9, mlpRatio: 4, qkvBias: true, imageSize: 224 });
  t.like(s16.info, { path: vits16, archSource: 'checkpoint', sha256: createHash('sha256').update(readFileSync(vits16)).digest('hex') });
  t.regex(s16.info.notes.join('\n'), /Architecture read from the checkpoint: patch 16, dim 384, depth 12, 6 heads, image 224/);
  // Given explicitly, the same file loads to the same weights.
  const given = await loadBackbone(vits16, { arch: 'dino_vits16' });
  t.is(given.info.archSource, 'given');
  const x = await readNpy(join(fixtures, 'pre_rgb.npy'));
  const crop = [{ image: x, mask: null }];
  t.deepEqual(Array.from((await s16.embedCrops(crop, { threads: 2 })).data), Array.from((await given.embedCrops(crop, { threads: 2 })).data));
  s16.dispose();
  given.dispose();

  // ViT-B/8 geometry (zeros: only the shapes matter here).
  const b8 = await loadBackbone(vitb8);
  t.like(b8.config, { patchSize: 8, embedDim: 768, depth: 12, numHeads: 12, maskLayers: 9, imageSize: 224 });
  t.is(b8.info.archSource, 'checkpoint');
  b8.dispose();
  rmSync(vitb8);

  // A width DINO does not use: the heads are unknown, so arch is asked for.
  await t.throwsAsync(loadBackbone(odd), { instanceOf: InvalidArgumentError, message: /width 32.*arch/ });
  const oddGiven = await loadBackbone(odd, { arch: { embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 } });
  t.is(oddGiven.info.archSource, 'given');
  oddGiven.dispose();

  // No file: the arch given, else dino_vitb8, randomly initialised.
  const random = await loadBackbone(null, { arch: { preset: 'dino_vits16', depth: 1, maskLayers: 1 } });
  t.like(random.info, { path: null, sha256: null, archSource: 'given' });
  random.dispose();
  const none = await loadBackbone(null);
  t.like(none.info, { path: null, archSource: 'default' });
  t.like(none.config, { patchSize: 8, embedDim: 768, numHeads: 12 });
  none.dispose();
});
