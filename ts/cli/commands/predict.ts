/**
 * `anomalyncd predict`: classifies new images with a saved training bundle (e.g. the
 * model.safetensors that `discover` writes) and flags images of no known type
 * (novelty, unknown). Never trains.
 * @internal
 * @module
 */
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { readManifest, stagingDir, writeFileAtomic } from '../../io/files.js';
import { evaluate } from '../../analysis/metrics.js';
import { predict } from '../../stages/discover.js';
import { loadTrainedModel } from '../../stages/train.js';
import { count, deviceFlag, flagHelp, MASK_MAP_FLAGS, maskMapOptions, parseFlags, positive, precisionFlag, text, toggle } from '../flags.js';
import { progressBar, warn, type Command } from '../output.js';

const FLAGS = {
  model: text({ required: '--model BUNDLE is required', placeholder: 'BUNDLE', help: 'A training bundle (.safetensors), e.g. DIR/model.safetensors from discover.' }),
  manifest: text({ required: '--manifest FILE.csv is required', placeholder: 'FILE.csv', help: "CSV with header 'image,map[,label]' (paths relative to it)." }),
  out: text({ required: '--out DIR is required', placeholder: 'DIR', help: 'Output folder: predictions.json (and metrics.json with labels).' }),
  backbone: text({ placeholder: 'FILE', help: 'The frozen backbone checkpoint, if the bundle does not store it and it moved.' }),
  device: deviceFlag,
  precision: precisionFlag,
  'tau-alpha': positive({ placeholder: 'A', help: "Region-merging temperature (default: the model's)." }),
  ...MASK_MAP_FLAGS,
  threads: count({ placeholder: 'T', help: 'Worker threads (default: all cores).' }),
  json: toggle({ help: 'Print a JSON summary.' }),
} as const;

async function run(args: string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags('predict', FLAGS, args);
  const maskMaps = maskMapOptions(flags);
  if (flags.threads === 0) throw new InvalidArgumentError('--threads must be at least 1');
  const rows = await readManifest(resolve(flags.manifest));
  if (rows.length === 0) throw new InvalidArgumentError('The manifest lists no (image, map) pairs');
  const model = await loadTrainedModel(resolve(flags.model), {
    ...(flags.backbone !== undefined ? { backbone: resolve(flags.backbone) } : {}),
    ...(flags.device !== undefined ? { device: flags.device } : {}),
    signal,
  });
  try {
    const outDir = resolve(flags.out);
    const staging = await stagingDir(outDir);
    try {
      const bar = progressBar('predict');
      const images = await predict(
        model,
        rows.map((r) => r.imagePath),
        rows.map((r) => r.mapPath),
        {
          ...maskMaps,
          ...(flags.tauAlpha !== undefined ? { tauAlpha: flags.tauAlpha } : {}),
          ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
          ...(flags.device !== undefined ? { device: flags.device } : {}),
          ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
          signal,
          ...(bar ? { onProgress: bar } : {}),
        },
      );
      const k = model.novelClasses.length;
      const predictions = {
        k,
        images: images.map((img, i) => ({
          image: rows[i]!.image,
          ...(rows[i]!.label !== undefined ? { label: rows[i]!.label } : {}),
          cluster: img.cluster,
          probabilities: img.probabilities,
          novelty: img.novelty,
          unknown: img.unknown,
          regions: img.regions.map((r) => ({ box: r.box, cluster: r.cluster, probability: r.probability, novelty: r.novelty })),
        })),
      };
      await writeFileAtomic(join(staging.path, 'predictions.json'), JSON.stringify(predictions, null, 1) + '\n');
      let metrics: { nmi: number; ari: number; f1: number } | undefined;
      if (rows.every((r) => r.label !== undefined)) {
        const m = evaluate(rows.map((r) => r.label!), images.map((i) => i.cluster));
        metrics = { nmi: m.nmi, ari: m.ari, f1: m.f1 };
        await writeFileAtomic(join(staging.path, 'metrics.json'), JSON.stringify({ anomalyncd: metrics }, null, 1) + '\n');
      }
      await staging.commit();
      const calibrated = images.some((i) => i.unknown !== null);
      const unknown = images.filter((i) => i.unknown).length;
      const notes = calibrated ? [] : ['The model has no novelty calibration (trained with holdout 0, or an older bundle): novelty is reported, unknown is null.'];
      warn([...model.warnings, ...notes]);
      if (flags.json) process.stdout.write(JSON.stringify({ out: outDir, k, images: images.length, unknown: calibrated ? unknown : null, metrics: metrics ?? null }) + '\n');
      else {
        process.stdout.write(`${images.length} images -> ${k} defect types${calibrated ? `, ${unknown} unknown (novelty above the calibrated threshold)` : ''} -> ${outDir}\n`);
        if (metrics) process.stdout.write(`NMI ${metrics.nmi.toFixed(3)}  ARI ${metrics.ari.toFixed(3)}  F1 ${metrics.f1.toFixed(3)}\n`);
      }
    } catch (e) {
      await staging.discard();
      throw e;
    }
  } finally {
    model.dispose();
  }
}

export const predictCommand: Command = { help: () => flagHelp('predict', FLAGS), run };
