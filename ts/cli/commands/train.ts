/**
 * `anomalyncd train`: NCD training from the crops of `anomalyncd regions`.
 *
 * ```
 * anomalyncd train --crops DIR_OR_regions.json --k K --out BUNDLE [--labeled DIR]
 *   [--backbone FILE] [--arch PRESET|JSON] [--epochs N] [--batch-size B] [--lr LR]
 *   [--seed S] [--threads T] [--resume-dir DIR] [--json]
 * ```
 * `--crops` is a `regions.json` (crop paths relative to it, scores used for PLC), a
 * folder holding one, or a folder with `images/**.png` and `masks/**.png` of the same
 * relative names (no scores: no PLC).
 * @internal
 * @module
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { BadInputError, IoError } from '../../core/errors.js';
import { fit, loadLabelled, readCropFiles, type FitOptions, type LabelledCrop, type TrainCrop, type TrainEvent } from '../../stages/train.js';
import { count, deviceFlag, flagHelp, parseFlags, positive, precisionFlag, text, toggle } from '../flags.js';
import type { Command } from '../output.js';

const FLAGS = {
  crops: text({ required: '--crops is required', placeholder: 'DIR|regions.json', help: "The crops of 'anomalyncd regions', or images/ and masks/ folders." }),
  k: count({ required: '--k (the number of novel classes) is required', placeholder: 'K', help: 'Number of novel classes.' }),
  out: text({ required: '--out is required', placeholder: 'BUNDLE', help: 'Where the trained model goes.' }),
  labeled: text({ placeholder: 'DIR', help: 'Labelled known classes: a folder or a manifest.' }),
  backbone: text({ placeholder: 'FILE', help: 'Pretrained DINO checkpoint (absent: random init).' }),
  arch: text({ placeholder: 'PRESET|JSON', help: 'Architecture.' }),
  epochs: count({ help: 'Training epochs.' }),
  'batch-size': count({ placeholder: 'B', help: 'Batch size.' }),
  lr: positive({ placeholder: 'LR', help: 'Base learning rate.' }),
  seed: count({ placeholder: 'S', help: 'Seed.' }),
  threads: count({ placeholder: 'T', help: 'Worker threads (default: all cores).' }),
  'resume-dir': text({ placeholder: 'DIR', help: 'Checkpoint each epoch here and resume from it.' }),
  device: deviceFlag,
  precision: precisionFlag,
  json: toggle({ help: 'Print a JSON summary.' }),
} as const;

interface RegionsFile {
  searchRange?: [number, number];
  items: { crops: { image: string; mask: string; score?: number }[] }[];
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function pngsUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && e.name.toLowerCase().endsWith('.png')) out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Reads the unlabelled crops named by `--crops`. */
async function readCrops(path: string, threads: number | undefined, signal: AbortSignal): Promise<{ crops: TrainCrop[]; searchRange?: [number, number] }> {
  let jsonPath: string | undefined;
  if (await isDir(path)) {
    if (await exists(join(path, 'regions.json'))) jsonPath = join(path, 'regions.json');
  } else if (await exists(path)) jsonPath = path;
  else throw new IoError(`--crops '${path}' does not exist`);
  const opts = { signal, ...(threads !== undefined ? { threads } : {}) };
  if (jsonPath) {
    let parsed: RegionsFile;
    try {
      parsed = JSON.parse(await readFile(jsonPath, 'utf8')) as RegionsFile;
    } catch (e) {
      throw new BadInputError(`Cannot read '${jsonPath}' as a regions.json: ${(e as Error).message}`, { cause: e });
    }
    if (!parsed || !Array.isArray(parsed.items)) throw new BadInputError(`'${jsonPath}' is not a regions.json (no items array)`);
    const base = dirname(jsonPath);
    const rows = parsed.items.flatMap((it) => (Array.isArray(it.crops) ? it.crops : []));
    if (rows.length === 0) throw new BadInputError(`'${jsonPath}' lists no crops`);
    for (const r of rows)
      if (typeof r.image !== 'string' || typeof r.mask !== 'string') throw new BadInputError(`'${jsonPath}': every crop needs image and mask paths`);
    const decoded = await readCropFiles(
      rows.map((r) => resolve(base, r.image)),
      rows.map((r) => resolve(base, r.mask)),
      opts,
    );
    const crops = decoded.map((c, i) => {
      const score = rows[i]!.score;
      return typeof score === 'number' ? { ...c, score } : c;
    });
    const range = parsed.searchRange;
    // A degenerate range (every map fell back to the whole image) cannot binarise new maps: not saved, as discover does.
    return Array.isArray(range) && range.length === 2 && range[0] < range[1] ? { crops, searchRange: [range[0], range[1]] } : { crops };
  }
  const imagesDir = join(path, 'images');
  const masksDir = join(path, 'masks');
  if (!(await isDir(imagesDir)) || !(await isDir(masksDir)))
    throw new BadInputError(`--crops '${path}' holds neither regions.json nor images/ and masks/ folders`);
  const names = await pngsUnder(imagesDir);
  if (names.length === 0) throw new BadInputError(`'${imagesDir}' holds no .png crops`);
  const crops = await readCropFiles(
    names.map((n) => join(imagesDir, n)),
    names.map((n) => join(masksDir, n)),
    opts,
  );
  return { crops };
}

/** Runs `anomalyncd train` with the arguments after the command name. */
export async function cmdTrain(args: string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags('train', FLAGS, args);
  const threads = flags.threads;
  const started = performance.now();

  const { crops, searchRange } = await readCrops(resolve(flags.crops), threads, signal);
  let labelled: LabelledCrop[] = [];
  if (flags.labeled !== undefined) labelled = await loadLabelled(resolve(flags.labeled), { signal, ...(threads !== undefined ? { threads } : {}) });
  const readMs = performance.now() - started;

  const options: FitOptions = { k: flags.k, signal };
  if (flags.backbone !== undefined) options.backbone = resolve(flags.backbone);
  if (flags.arch !== undefined) options.arch = flags.arch; // a preset name or JSON text (parsed by fit)
  if (flags.epochs !== undefined) options.epochs = flags.epochs;
  if (flags.batchSize !== undefined) options.batchSize = flags.batchSize;
  if (flags.lr !== undefined) options.lr = flags.lr;
  if (flags.seed !== undefined) options.seed = flags.seed;
  if (threads !== undefined) options.threads = threads;
  if (flags.resumeDir !== undefined) options.checkpointDir = resolve(flags.resumeDir);
  if (searchRange) options.searchRange = searchRange;
  if (flags.device !== undefined) options.device = flags.device;
  if (flags.precision !== undefined) options.precision = flags.precision;
  options.onProgress = (e: TrainEvent) => {
    if (e.type !== 'epoch') return;
    const line = `epoch ${e.epoch + 1}/${e.epochs}  loss ${e.losses.total.toFixed(4)}  lr ${e.lr.toPrecision(3)}  teacher ${e.teacherTemp.toFixed(4)}  ${e.batches} batches  ${(e.ms / 1000).toFixed(1)} s`;
    process.stderr.write(line + '\n');
  };

  const model = await fit(labelled.length > 0 ? { unlabelled: crops, labelled } : { unlabelled: crops }, options);
  try {
    for (const w of model.warnings) process.stderr.write(`anomalyncd: warning: ${w}\n`);
    await model.save(resolve(flags.out), { signal });
    const last = model.history[model.history.length - 1];
    const totalMs = performance.now() - started;
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({
          out: resolve(flags.out),
          crops: crops.length,
          labelled: labelled.length,
          classNames: model.classNames,
          selectedHead: model.selectedHead,
          selectedHeads: model.selectedHeads,
          epochs: model.epochsDone,
          finalLosses: last?.losses ?? null,
          history: model.history.map((h) => ({ epoch: h.epoch, total: h.losses.total, cluster: h.losses.cluster, lr: h.lr, teacherTemp: h.teacherTemp, ms: h.ms })),
          device: model.device,
          precision: flags.precision ?? 'fp32',
          timings: { readMs, totalMs },
          warnings: model.warnings,
        }) + '\n',
      );
    } else {
      process.stdout.write(
        `${crops.length} crops (${labelled.length} labelled), ${model.epochsDone} epochs, head ${model.selectedHead} selected` +
          (last ? `, final loss ${last.losses.total.toFixed(4)}` : '') +
          ` -> ${resolve(flags.out)} (${(totalMs / 1000).toFixed(1)} s)\n`,
      );
    }
  } finally {
    model.dispose();
  }
}

export const trainCommand: Command = { help: () => flagHelp('train', FLAGS), run: cmdTrain };
