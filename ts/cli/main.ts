#!/usr/bin/env node
/**
 * The `anomalyncd` command line.
 *
 * Exit codes: 0 success, 2 usage or invalid argument, 3 bad input data or
 * unreadable/unwritable files, 4 bad checkpoint, 130 aborted (Ctrl-C),
 * 1 internal failure.
 * @module
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AnomalyNCDError, InvalidArgumentError } from '../core/errors.js';
import { listPngs, readManifest, stagingDir, writeFileAtomic } from '../io/files.js';
import { binarize, type BinarizeOptions, type MebinOptions } from '../stages/mebin.js';
import { packageRoot } from '../native/loader.js';
import { extractRegions, type ExtractRegionsOptions, type RegionsResult } from '../stages/regions.js';
// discover, train and the model load on first use: `anomalyncd mebin` must start fast.
import type { DiscoverFlags } from './discover.js';
import { readNpy, writeNpy } from '../io/npy.js';
import type { Progress } from '../core/jobs.js';

type Flags = Map<string, string | true>;

/** Parses `--flag value`, `--flag=value` and boolean `--flag`. */
function parseFlags(args: string[], booleans: ReadonlySet<string>): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new InvalidArgumentError(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq >= 0) flags.set(name, arg.slice(eq + 1));
    else if (booleans.has(name)) flags.set(name, true);
    else {
      const value = args[++i];
      if (value === undefined) throw new InvalidArgumentError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  return flags;
}

function allow(flags: Flags, allowed: readonly string[], command: string): void {
  for (const name of flags.keys())
    if (!allowed.includes(name)) throw new InvalidArgumentError(`'anomalyncd ${command}' has no option --${name} (options: ${allowed.map((a) => '--' + a).join(' ')})`);
}

function str(flags: Flags, name: string, required: true): string;
function str(flags: Flags, name: string, required?: false): string | undefined;
function str(flags: Flags, name: string, required = false): string | undefined {
  const v = flags.get(name);
  if (v === true) throw new InvalidArgumentError(`--${name} needs a value`);
  if (v === undefined && required) throw new InvalidArgumentError(`--${name} is required`);
  return v;
}

function int(flags: Flags, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`--${name} must be an integer (got '${v}')`);
  return Number(v);
}

const MEBIN_FLAGS = ['sample-rate', 'min-interval', 'no-erode', 'range', 'threads'] as const;

function mebinOptions(flags: Flags): MebinOptions & { threads?: number } {
  const options: MebinOptions & { threads?: number } = {};
  const sampleRate = int(flags, 'sample-rate');
  const minInterval = int(flags, 'min-interval');
  const threads = int(flags, 'threads');
  if (sampleRate !== undefined) options.sampleRate = sampleRate;
  if (minInterval !== undefined) options.minIntervalLen = minInterval;
  if (threads !== undefined) options.threads = threads;
  if (flags.has('no-erode')) options.erode = false;
  const range = str(flags, 'range');
  if (range !== undefined) {
    const m = /^(\d+),(\d+)$/.exec(range);
    if (!m) throw new InvalidArgumentError(`--range must be MIN,MAX (got '${range}')`);
    options.range = [Number(m[1]), Number(m[2])];
  }
  return options;
}

/** A one-line progress bar on stderr when it is a terminal. */
function progressBar(label: string): ((p: Progress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return ({ done, total }) => {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
    if (done >= total) process.stderr.write('\n');
  };
}

function warn(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}

function timingTable(rows: [string, number][]): string {
  const width = Math.max(...rows.map(([name]) => name.length));
  return ['stage'.padEnd(width) + '  ms', ...rows.map(([name, ms]) => `${name.padEnd(width)}  ${ms.toFixed(3)}`)].join('\n');
}

const controller = new AbortController();

async function cmdMebin(args: string[]): Promise<void> {
  const flags = parseFlags(args, new Set(['no-erode', 'json']));
  allow(flags, ['maps', 'out', 'binary-out', 'json', ...MEBIN_FLAGS], 'mebin');
  const mapsDir = resolve(str(flags, 'maps', true));
  const out = resolve(str(flags, 'out', true));
  const files = await listPngs(mapsDir);
  if (files.length === 0) throw new InvalidArgumentError(`No .png maps under '${mapsDir}'`);
  const binaryOut = str(flags, 'binary-out');
  const staging = binaryOut !== undefined ? await stagingDir(resolve(binaryOut)) : undefined;
  try {
    const options: BinarizeOptions = { ...mebinOptions(flags), returnBinary: false, signal: controller.signal };
    const bar = progressBar('mebin');
    if (bar) options.onProgress = bar;
    if (staging) {
      options.binaryDir = staging.path;
      options.binaryNames = files;
    }
    const result = await binarize(
      files.map((f) => join(mapsDir, f)),
      options,
    );
    warn(result.warnings);
    const json = {
      searchRange: result.searchRange,
      maps: result.maps.map((m, i) => ({ path: files[i], threshold: m.threshold, count: m.count, sequence: m.sequence, foreground: m.foreground })),
      timings: { mebinMsPerMap: result.timings.mebinMsPerMap },
    };
    await writeFileAtomic(out, JSON.stringify(json, null, 1) + '\n');
    await staging?.commit();
    if (flags.has('json')) process.stdout.write(JSON.stringify({ out, maps: files.length, timings: json.timings }) + '\n');
    else {
      process.stdout.write(`${files.length} maps binarised, search range [${result.searchRange.join(', ')}] -> ${out}\n`);
      process.stdout.write(timingTable([['mebin (per map)', result.timings.mebinMsPerMap]]) + '\n');
    }
  } catch (e) {
    await staging?.discard();
    throw e;
  }
}

/** regions.json as the CLI contract describes it. */
function regionsJson(result: RegionsResult, rows: { image: string; map: string }[], cropPrefix: string) {
  return {
    searchRange: result.searchRange,
    items: result.items.map((item, i) => ({
      image: rows[i]!.image,
      map: rows[i]!.map,
      threshold: item.threshold,
      count: item.count,
      sequence: item.sequence,
      boxes: item.boxes,
      crops: item.crops.map((c) => ({
        image: `${cropPrefix}/${c.imageFile}`,
        mask: `${cropPrefix}/${c.maskFile}`,
        maskArea: c.maskArea,
        score: c.score,
      })),
    })),
    timings: { mebinMsPerMap: result.timings.mebinMsPerMap, cropMsPerImage: result.timings.cropMsPerImage },
  };
}

/** Stem up to the first dot, as the reference names crop files. */
function stemOf(path: string): string {
  const name = basename(path);
  const dot = name.indexOf('.');
  return (dot > 0 ? name.slice(0, dot) : name).replace(/[^A-Za-z0-9_.-]/g, '_');
}

async function cmdRegions(args: string[]): Promise<void> {
  const flags = parseFlags(args, new Set(['no-erode', 'json']));
  allow(flags, ['manifest', 'out', 'json', ...MEBIN_FLAGS], 'regions');
  const rows = await readManifest(resolve(str(flags, 'manifest', true)));
  if (rows.length === 0) throw new InvalidArgumentError('The manifest lists no (image, map) pairs');
  const outDir = resolve(str(flags, 'out', true));
  const staging = await stagingDir(outDir);
  try {
    const options: ExtractRegionsOptions = {
      ...mebinOptions(flags),
      returnPixels: false,
      cropDir: join(staging.path, 'crops'),
      names: rows.map((r, i) => `${String(i).padStart(5, '0')}_${stemOf(r.image)}`),
      signal: controller.signal,
    };
    const bar = progressBar('regions');
    if (bar) options.onProgress = bar;
    const result = await extractRegions(
      rows.map((r) => r.imagePath),
      rows.map((r) => r.mapPath),
      options,
    );
    warn(result.warnings);
    const json = regionsJson(result, rows, 'crops');
    await writeFileAtomic(join(staging.path, 'regions.json'), JSON.stringify(json, null, 1) + '\n');
    await staging.commit();
    const crops = result.items.reduce((n, it) => n + it.crops.length, 0);
    if (flags.has('json')) process.stdout.write(JSON.stringify({ out: join(outDir, 'regions.json'), items: rows.length, crops, timings: json.timings }) + '\n');
    else {
      process.stdout.write(`${rows.length} images -> ${crops} crops, search range [${result.searchRange.join(', ')}] -> ${outDir}\n`);
      process.stdout.write(
        timingTable([
          ['mebin (per map)', result.timings.mebinMsPerMap],
          ['crop (per image)', result.timings.cropMsPerImage],
        ]) + '\n',
      );
    }
  } catch (e) {
    await staging.discard();
    throw e;
  }
}

/** The embedded default: `discover` over the synthetic generator with a small random-init ViT (no download). */
const DEMO_DEFAULTS: Partial<DiscoverFlags> = {
  dataset: 'synthetic',
  k: 5,
  out: 'anomalyncd-demo',
  arch: JSON.stringify({ patchSize: 16, embedDim: 96, depth: 4, numHeads: 4, maskLayers: 2 }),
  epochs: 8,
  perType: 8,
};

async function cmdEmbed(args: string[]): Promise<void> {
  const flags = parseFlags(args, new Set(['json']));
  allow(flags, ['checkpoint', 'arch', 'images', 'masks', 'out', 'threads', 'batch-size', 'device', 'json'], 'embed');
  const images = await readNpy(str(flags, 'images', true));
  const masksPath = str(flags, 'masks');
  const masks = masksPath !== undefined ? await readNpy(masksPath) : undefined;
  const out = str(flags, 'out', true);
  const device = str(flags, 'device');
  const threads = int(flags, 'threads');
  const batchSize = int(flags, 'batch-size');
  const t0 = performance.now();
  const { loadBackbone } = await import('../stages/model.js');
  const model = await loadBackbone(str(flags, 'checkpoint', true), {
    arch: str(flags, 'arch') ?? 'dino_vitb8',
    ...(device !== undefined ? { device } : {}),
    signal: controller.signal,
  });
  const loadMs = performance.now() - t0;
  try {
    const t1 = performance.now();
    const bar = progressBar('embed');
    const y = await model.embed(images, masks, {
      signal: controller.signal,
      ...(threads !== undefined ? { threads } : {}),
      ...(batchSize !== undefined ? { batchSize } : {}),
      ...(bar ? { onProgress: bar } : {}),
    });
    const embedMs = performance.now() - t1;
    await writeNpy(out, y);
    if (flags.has('json')) process.stdout.write(JSON.stringify({ out, shape: y.shape, timings: { loadMs, embedMs } }) + '\n');
    else process.stdout.write(`[${y.shape.join(', ')}] embeddings -> ${out}\n` + timingTable([['load checkpoint', loadMs], ['embed (all)', embedMs]]) + '\n');
  } finally {
    model.dispose();
  }
}

function discoverFlags(args: string[], command: string, defaults: Partial<DiscoverFlags> = {}): DiscoverFlags {
  const flags = parseFlags(args, new Set(['json', 'gt-maps']));
  allow(
    flags,
    ['manifest', 'dataset', 'root', 'category', 'maps', 'gt-maps', 'k', 'out', 'backbone', 'arch', 'labeled', 'epochs', 'seed', 'threads', 'tau-alpha', 'per-type', 'json'],
    command,
  );
  const k = str(flags, 'k') ?? (defaults.k !== undefined ? String(defaults.k) : undefined);
  if (k === undefined) throw new InvalidArgumentError('--k K|auto is required');
  if (k !== 'auto' && !/^\d+$/.test(k)) throw new InvalidArgumentError(`--k must be a positive integer or 'auto' (got '${k}')`);
  const dataset = str(flags, 'dataset') ?? defaults.dataset;
  if (dataset !== undefined && !['mtd', 'mvtec', 'synthetic'].includes(dataset)) throw new InvalidArgumentError(`--dataset must be mtd, mvtec or synthetic (got '${dataset}')`);
  const out = str(flags, 'out') ?? defaults.out;
  if (out === undefined) throw new InvalidArgumentError('--out DIR is required');
  const tau = str(flags, 'tau-alpha');
  if (tau !== undefined && !(Number(tau) > 0)) throw new InvalidArgumentError(`--tau-alpha must be a positive number (got '${tau}')`);
  const d: DiscoverFlags = { k: k === 'auto' ? 'auto' : Number(k), out };
  const set = <K extends keyof DiscoverFlags>(key: K, value: DiscoverFlags[K] | undefined) => {
    if (value !== undefined) d[key] = value;
  };
  set('manifest', str(flags, 'manifest'));
  set('dataset', dataset as DiscoverFlags['dataset']);
  set('root', str(flags, 'root'));
  set('category', str(flags, 'category'));
  set('maps', str(flags, 'maps'));
  if (flags.has('gt-maps')) d.gtMaps = true;
  set('backbone', str(flags, 'backbone'));
  set('arch', str(flags, 'arch') ?? defaults.arch);
  set('labeled', str(flags, 'labeled'));
  set('epochs', int(flags, 'epochs') ?? defaults.epochs);
  set('seed', int(flags, 'seed'));
  set('threads', int(flags, 'threads'));
  set('perType', int(flags, 'per-type') ?? defaults.perType);
  if (tau !== undefined) d.tauAlpha = Number(tau);
  if (flags.has('json')) d.json = true;
  return d;
}

async function cmdDiscover(args: string[], defaults: Partial<DiscoverFlags> = {}, command = 'discover'): Promise<void> {
  const flags = discoverFlags(args, command, defaults);
  if (flags.backbone === undefined)
    process.stderr.write(
      '\n*** WARNING: no --backbone given: the ViT is RANDOMLY INITIALISED. Clusters will be far worse than with a\n' +
        '*** pretrained DINO checkpoint (e.g. dino_vitbase8_pretrain.pth; see README).\n\n',
    );
  const bar = progressBar('discover');
  let lastStage = '';
  const { runDiscover } = await import('./discover.js');
  const { result, outDir } = await runDiscover(flags, controller.signal, (p) => {
    if (!bar) return;
    if (p.stage !== lastStage) {
      if (lastStage) process.stderr.write('\n');
      lastStage = p.stage;
    }
    progressBar(p.stage.padEnd(9))?.(p);
  });
  try {
    warn(result.warnings);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ out: outDir, k: result.k, kChoice: result.kChoice, metrics: result.metrics ?? null, timings: result.timings, warnings: result.warnings }) + '\n');
      return;
    }
    process.stdout.write(`\n${result.images.length} images -> ${result.k} defect types (${result.kChoice.mode === 'auto' ? 'K estimated' : 'K given'}) -> ${outDir}\n`);
    const sizes = new Map<number, number>();
    for (const img of result.images) sizes.set(img.cluster, (sizes.get(img.cluster) ?? 0) + 1);
    process.stdout.write(`cluster sizes: ${[...sizes].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}:${n}`).join('  ')}\n`);
    if (result.metrics) {
      const f = (m: { nmi: number; ari: number; f1: number }) => `NMI ${m.nmi.toFixed(3)}  ARI ${m.ari.toFixed(3)}  F1 ${m.f1.toFixed(3)}`;
      process.stdout.write(`AnomalyNCD        ${f(result.metrics.anomalyncd)}\nk-means baseline  ${f(result.metrics.kmeansBaseline)}\n`);
    }
    process.stdout.write('\n' + timingTable(Object.entries(result.timings)) + '\n');
    process.stdout.write(`report: ${join(outDir, 'report.html')}\n`);
  } finally {
    result.model.dispose();
  }
}

const USAGE = `anomalyncd <command> [options]

Commands:
  demo     [--per-type N] [--k K] [--epochs N] [--out DIR] [--seed S] [--threads T] [--json] [discover options]
           discover end to end on the embedded synthetic defect generator (no download), with a small
           random-init ViT: prints per-stage ms and metrics, writes anomalyncd-demo/report.html.
  mebin    --maps DIR --out FILE.json [--binary-out DIR] [--sample-rate 4] [--min-interval 4]
           [--no-erode] [--range MIN,MAX] [--threads T] [--json]
  regions  --manifest FILE.csv --out DIR [MEBin options] [--threads T] [--json]
  discover (--manifest FILE.csv | --dataset mtd|mvtec --root DIR [--category C] (--maps DIR | --gt-maps)
            | --dataset synthetic [--per-type N]) --k K|auto --out DIR [--backbone FILE] [--arch PRESET|JSON]
           [--labeled DIR] [--epochs N] [--seed S] [--threads T] [--tau-alpha A] [--json]
           MEBin -> crops -> training -> prediction -> merging; writes predictions.json, metrics.json
           (labels known), timings.json and report.html.
  train    see 'anomalyncd train --help'
  embed    --checkpoint FILE --arch PRESET|JSON --images X.npy --masks M.npy --out Y.npy
           [--threads T] [--batch-size N] [--device cpu|cuda:0] [--json]

Exit codes: 0 ok, 2 usage/invalid argument, 3 bad input or file error, 4 bad checkpoint, 130 aborted, 1 internal error.
`;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof AnomalyNCDError)) return 1;
  switch (error.code) {
    case 'ERR_INVALID_ARGUMENT': return 2;
    case 'ERR_BAD_INPUT':
    case 'ERR_IO': return 3;
    case 'ERR_CHECKPOINT': return 4;
    case 'ERR_ABORTED': return 130;
    default: return 1;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  process.once('SIGINT', () => controller.abort());
  try {
    switch (command) {
      case 'mebin': await cmdMebin(rest); break;
      case 'regions': await cmdRegions(rest); break;
      case 'demo': await cmdDiscover(rest, DEMO_DEFAULTS, 'demo'); break;
      case 'embed': await cmdEmbed(rest); break;
      case 'discover': await cmdDiscover(rest); break;
      case 'train': await (await import('./train.js')).cmdTrain(rest, controller.signal); break;
      case '--version':
      case 'version': {
        const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
        process.stdout.write(pkg.version + '\n');
        break;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        break;
      default:
        process.stderr.write(`anomalyncd: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
    return 0;
  } catch (e) {
    const code = e instanceof AnomalyNCDError ? e.code : 'ERR_INTERNAL';
    process.stderr.write(`anomalyncd: ${code}: ${(e as Error).message ?? String(e)}\n`);
    if (!(e instanceof AnomalyNCDError) && (e as Error).stack) process.stderr.write(`${(e as Error).stack}\n`);
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv.slice(2));
