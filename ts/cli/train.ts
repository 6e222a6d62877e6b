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
 * @module
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { BadInputError, InvalidArgumentError, IoError } from '../core/errors.js';
import { fit, loadLabelled, readCropFiles, type FitOptions, type LabelledCrop, type TrainCrop, type TrainEvent } from '../stages/train.js';

const VALUE_FLAGS = ['crops', 'k', 'out', 'labeled', 'backbone', 'arch', 'epochs', 'batch-size', 'lr', 'seed', 'threads', 'resume-dir'];
const BOOL_FLAGS = ['json'];

function parse(args: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new InvalidArgumentError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!VALUE_FLAGS.includes(name) && !BOOL_FLAGS.includes(name))
      throw new InvalidArgumentError(`'anomalyncd train' has no option --${name} (options: ${[...VALUE_FLAGS, ...BOOL_FLAGS].map((f) => '--' + f).join(' ')})`);
    if (BOOL_FLAGS.includes(name)) {
      if (eq >= 0) throw new InvalidArgumentError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (eq >= 0) flags.set(name, arg.slice(eq + 1));
    else {
      const value = args[++i];
      if (value === undefined) throw new InvalidArgumentError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  return flags;
}

function str(flags: Map<string, string | true>, name: string): string | undefined {
  const v = flags.get(name);
  if (v === true) throw new InvalidArgumentError(`--${name} needs a value`);
  return v;
}

function int(flags: Map<string, string | true>, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`--${name} must be a non-negative integer (got '${v}')`);
  return Number(v);
}

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
    return Array.isArray(range) && range.length === 2 ? { crops, searchRange: [range[0], range[1]] } : { crops };
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
  const flags = parse(args);
  const cropsPath = str(flags, 'crops');
  const k = int(flags, 'k');
  const out = str(flags, 'out');
  if (cropsPath === undefined) throw new InvalidArgumentError('--crops is required');
  if (k === undefined) throw new InvalidArgumentError('--k (the number of novel classes) is required');
  if (out === undefined) throw new InvalidArgumentError('--out is required');
  const json = flags.has('json');
  const threads = int(flags, 'threads');
  const started = performance.now();

  const { crops, searchRange } = await readCrops(resolve(cropsPath), threads, signal);
  const labeledDir = str(flags, 'labeled');
  let labelled: LabelledCrop[] = [];
  if (labeledDir !== undefined) labelled = await loadLabelled(resolve(labeledDir), { signal, ...(threads !== undefined ? { threads } : {}) });
  const readMs = performance.now() - started;

  const options: FitOptions = { k, signal };
  const backbone = str(flags, 'backbone');
  if (backbone !== undefined) options.backbone = resolve(backbone);
  const arch = str(flags, 'arch');
  if (arch !== undefined) options.arch = arch; // a preset name or JSON text (parsed by fit)
  const epochs = int(flags, 'epochs');
  if (epochs !== undefined) options.epochs = epochs;
  const batchSize = int(flags, 'batch-size');
  if (batchSize !== undefined) options.batchSize = batchSize;
  const lr = str(flags, 'lr');
  if (lr !== undefined) {
    const v = Number(lr);
    if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`--lr must be a positive number (got '${lr}')`);
    options.lr = v;
  }
  const seed = int(flags, 'seed');
  if (seed !== undefined) options.seed = seed;
  if (threads !== undefined) options.threads = threads;
  const resumeDir = str(flags, 'resume-dir');
  if (resumeDir !== undefined) options.checkpointDir = resolve(resumeDir);
  if (searchRange) options.searchRange = searchRange;
  options.onProgress = (e: TrainEvent) => {
    if (e.type !== 'epoch') return;
    const line = `epoch ${e.epoch + 1}/${e.epochs}  loss ${e.losses.total.toFixed(4)}  lr ${e.lr.toPrecision(3)}  teacher ${e.teacherTemp.toFixed(4)}  ${e.batches} batches  ${(e.ms / 1000).toFixed(1)} s`;
    process.stderr.write(line + '\n');
  };

  const model = await fit(labelled.length > 0 ? { unlabelled: crops, labelled } : { unlabelled: crops }, options);
  try {
    for (const w of model.warnings) process.stderr.write(`anomalyncd: warning: ${w}\n`);
    await model.save(resolve(out), { signal });
    const last = model.history[model.history.length - 1];
    const totalMs = performance.now() - started;
    if (json) {
      process.stdout.write(
        JSON.stringify({
          out: resolve(out),
          crops: crops.length,
          labelled: labelled.length,
          classNames: model.classNames,
          selectedHead: model.selectedHead,
          selectedHeads: model.selectedHeads,
          epochs: model.epochsDone,
          finalLosses: last?.losses ?? null,
          history: model.history.map((h) => ({ epoch: h.epoch, total: h.losses.total, cluster: h.losses.cluster, lr: h.lr, teacherTemp: h.teacherTemp, ms: h.ms })),
          timings: { readMs, totalMs },
          warnings: model.warnings,
        }) + '\n',
      );
    } else {
      process.stdout.write(
        `${crops.length} crops (${labelled.length} labelled), ${model.epochsDone} epochs, head ${model.selectedHead} selected` +
          (last ? `, final loss ${last.losses.total.toFixed(4)}` : '') +
          ` -> ${resolve(out)} (${(totalMs / 1000).toFixed(1)} s)\n`,
      );
    }
  } finally {
    model.dispose();
  }
}
