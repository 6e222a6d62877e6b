/**
 * `anomalyncd mebin`: binarise every 8-bit PNG map under a folder with one
 * search range, writing the thresholds (and optionally the binary maps).
 * @internal
 * @module
 */
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { listPngs, stagingDir, writeFileAtomic } from '../../io/files.js';
import { binarize, type BinarizeOptions, type MebinOptions } from '../../stages/mebin.js';
import { count, custom, deviceFlag, flagHelp, parseFlags, text, toggle, type ParsedFlags } from '../flags.js';
import type { DeviceRequest } from '../../core/options.js';
import { progressBar, timingTable, warn, type Command } from '../output.js';

/** The MEBin flags `mebin` and `regions` share. */
export const MEBIN_FLAGS = {
  'sample-rate': count({ help: 'Threshold step of the sweep.' }),
  'min-interval': count({ help: 'Shortest stable run of thresholds.' }),
  'no-erode': toggle({ help: 'Skip the 6×6 min-filter.' }),
  range: custom(
    (v, flag): [number, number] => {
      const m = /^(\d+),(\d+)$/.exec(v);
      if (!m) throw new InvalidArgumentError(`${flag} must be MIN,MAX (got '${v}')`);
      return [Number(m[1]), Number(m[2])];
    },
    { placeholder: 'MIN,MAX', help: 'Search range instead of the one computed over all maps.' },
  ),
  threads: count({ placeholder: 'T', help: 'Worker threads (default: all cores).' }),
  device: deviceFlag,
} as const;

/** The library options the MEBin flags stand for. */
export function mebinOptions(flags: ParsedFlags<typeof MEBIN_FLAGS>): MebinOptions & { threads?: number; device?: DeviceRequest } {
  const options: MebinOptions & { threads?: number; device?: DeviceRequest } = {};
  if (flags.device !== undefined) options.device = flags.device;
  if (flags.sampleRate !== undefined) options.sampleRate = flags.sampleRate;
  if (flags.minInterval !== undefined) options.minIntervalLen = flags.minInterval;
  if (flags.threads !== undefined) options.threads = flags.threads;
  if (flags.noErode) options.erode = false;
  if (flags.range !== undefined) options.range = flags.range;
  return options;
}

const FLAGS = {
  maps: text({ required: true, placeholder: 'DIR', help: 'Folder of 8-bit grayscale .png maps (searched recursively).' }),
  out: text({ required: true, placeholder: 'FILE.json', help: 'Where the thresholds go.' }),
  'binary-out': text({ placeholder: 'DIR', help: 'Also write the binary maps here, same relative names.' }),
  json: toggle({ help: 'Print a JSON summary.' }),
  ...MEBIN_FLAGS,
} as const;

async function run(args: string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags('mebin', FLAGS, args);
  const mapsDir = resolve(flags.maps);
  const out = resolve(flags.out);
  const files = await listPngs(mapsDir);
  if (files.length === 0) throw new InvalidArgumentError(`No .png maps under '${mapsDir}'`);
  const staging = flags.binaryOut !== undefined ? await stagingDir(resolve(flags.binaryOut), signal) : undefined;
  try {
    const options: BinarizeOptions = { ...mebinOptions(flags), returnBinary: false, signal };
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
      device: result.device,
      maps: result.maps.map((m, i) => ({ path: files[i], threshold: m.threshold, count: m.count, sequence: m.sequence, foreground: m.foreground })),
      timings: { mebinMsPerMap: result.timings.mebinMsPerMap },
    };
    await writeFileAtomic(out, JSON.stringify(json, null, 1) + '\n');
    await staging?.commit();
    if (flags.json) process.stdout.write(JSON.stringify({ out, maps: files.length, device: result.device, timings: json.timings }) + '\n');
    else {
      process.stdout.write(`${files.length} maps binarised, search range [${result.searchRange.join(', ')}] -> ${out}\n`);
      process.stdout.write(timingTable([['mebin (per map)', result.timings.mebinMsPerMap]]) + '\n');
    }
  } catch (e) {
    await staging?.discard();
    throw e;
  }
}

export const mebinCommand: Command = { help: () => flagHelp('mebin', FLAGS), run };
