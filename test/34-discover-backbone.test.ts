// discover with a backbone checkpoint: the architecture is read from a DINO-layout
// file when --arch is omitted, and the file is read once for features and training.
import test from 'ava';
import { join } from 'node:path';
import { discover, generateSynthetic } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { cli, python, tempDir } from './helpers.js';

/** A random DINO-layout ViT-S/16 state dict (keys as DINO's release files), saved with torch.save. */
function writeVits16(path: string): void {
  python(
    `import torch, sys
D, depth, P = 384, 12, 16
torch.manual_seed(0)
r = lambda *s: torch.randn(*s) * 0.02
sd = {'cls_token': r(1, 1, D), 'pos_embed': r(1, 197, D), 'patch_embed.proj.weight': r(D, 3, P, P), 'patch_embed.proj.bias': torch.zeros(D)}
for i in range(depth):
    b = 'blocks.%d.' % i
    sd.update({b + 'norm1.weight': torch.ones(D), b + 'norm1.bias': torch.zeros(D), b + 'attn.qkv.weight': r(3 * D, D), b + 'attn.qkv.bias': r(3 * D),
               b + 'attn.proj.weight': r(D, D), b + 'attn.proj.bias': torch.zeros(D), b + 'norm2.weight': torch.ones(D), b + 'norm2.bias': torch.zeros(D),
               b + 'mlp.fc1.weight': r(4 * D, D), b + 'mlp.fc1.bias': torch.zeros(4 * D), b + 'mlp.fc2.weight': r(D, 4 * D), b + 'mlp.fc2.bias': torch.zeros(D)})
sd.update({'norm.weight': torch.ones(D), 'norm.bias': torch.zeros(D)})
torch.save(sd, sys.argv[1])`,
    [path],
  );
}

test('discover with a DINO ViT-S/16 checkpoint and no arch: the architecture is read from it and the file is read once', async (t) => {
  const dir = tempDir();
  const ckpt = join(dir, 'dino_vits16_random.pth');
  writeVits16(ckpt);
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
