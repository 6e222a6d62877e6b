/**
 * `anomalyncd embed`: the final-normed [CLS] tokens of preprocessed images
 * under their masks, from a backbone checkpoint.
 * @internal
 * @module
 */
import { readNpy, writeNpy } from '../../io/npy.js';
import { loadBackbone } from '../../stages/model.js';
import { count, deviceFlag, flagHelp, parseFlags, precisionFlag, text, toggle } from '../flags.js';
import { progressBar, timingTable, type Command } from '../output.js';

const FLAGS = {
  checkpoint: text({ required: true, placeholder: 'FILE', help: 'DINO ViT checkpoint (.pth or .safetensors).' }),
  arch: text({ placeholder: 'PRESET|JSON', help: "Architecture (default: loadBackbone's)." }),
  images: text({ required: true, placeholder: 'X.npy', help: 'float32 [B,3,H,W], normalised.' }),
  masks: text({ placeholder: 'M.npy', help: 'float32 [B,1,H,W].' }),
  out: text({ required: true, placeholder: 'Y.npy', help: 'float32 [B,D] embeddings.' }),
  threads: count({ placeholder: 'T', help: 'Worker threads (default: all cores).' }),
  'batch-size': count({ help: 'Images per forward pass.' }),
  device: deviceFlag,
  precision: precisionFlag,
  json: toggle({ help: 'Print a JSON summary.' }),
} as const;

async function run(args: string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags('embed', FLAGS, args);
  const images = await readNpy(flags.images);
  const masks = flags.masks !== undefined ? await readNpy(flags.masks) : undefined;
  const out = flags.out;
  const t0 = performance.now();
  const model = await loadBackbone(flags.checkpoint, {
    ...(flags.arch !== undefined ? { arch: flags.arch } : {}),
    ...(flags.device !== undefined ? { device: flags.device } : {}),
    ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
    signal,
  });
  const loadMs = performance.now() - t0;
  try {
    const t1 = performance.now();
    const bar = progressBar('embed');
    const y = await model.embed(images, masks, {
      signal,
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
      ...(flags.batchSize !== undefined ? { batchSize: flags.batchSize } : {}),
      ...(bar ? { onProgress: bar } : {}),
    });
    const embedMs = performance.now() - t1;
    await writeNpy(out, y);
    if (flags.json) process.stdout.write(JSON.stringify({ out, shape: y.shape, device: model.device, precision: model.precision, timings: { loadMs, embedMs } }) + '\n');
    else process.stdout.write(`[${y.shape.join(', ')}] embeddings -> ${out}\n` + timingTable([['load checkpoint', loadMs], ['embed (all)', embedMs]]) + '\n');
  } finally {
    model.dispose();
  }
}

export const embedCommand: Command = { help: () => flagHelp('embed', FLAGS), run };
