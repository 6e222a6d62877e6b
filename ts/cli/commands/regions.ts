/**
 * `anomalyncd regions`: MEBin and anomaly-centred crops for a manifest of
 * (image, map) pairs, writing regions.json and the crops as PNG.
 * @internal
 * @module
 */
import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { readManifest, stagingDir, writeFileAtomic } from '../../io/files.js';
import { extractRegions, type ExtractRegionsOptions, type RegionsResult } from '../../stages/regions.js';
import { flagHelp, MASK_MAP_FLAGS, maskMapOptions, parseFlags, text, toggle } from '../flags.js';
import { progressBar, timingTable, warn, type Command } from '../output.js';
import { MEBIN_FLAGS, mebinOptions } from './mebin.js';

const FLAGS = {
  manifest: text({ required: true, placeholder: 'FILE.csv', help: "CSV with header 'image,map' (paths relative to it)." }),
  out: text({ required: true, placeholder: 'DIR', help: 'Output folder: regions.json and crops/.' }),
  json: toggle({ help: 'Print a JSON summary.' }),
  ...MEBIN_FLAGS,
  ...MASK_MAP_FLAGS,
} as const;

/** regions.json as the CLI contract describes it. */
function regionsJson(result: RegionsResult, rows: { image: string; map: string }[], cropPrefix: string) {
  return {
    searchRange: result.searchRange,
    device: result.device,
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

async function run(args: string[], signal: AbortSignal): Promise<void> {
  const flags = parseFlags('regions', FLAGS, args);
  maskMapOptions(flags);  // usage errors before any work
  const rows = await readManifest(resolve(flags.manifest));
  if (rows.length === 0) throw new InvalidArgumentError('The manifest lists no (image, map) pairs');
  const outDir = resolve(flags.out);
  const staging = await stagingDir(outDir, signal);
  try {
    const options: ExtractRegionsOptions = {
      ...mebinOptions(flags),
      ...maskMapOptions(flags),
      returnPixels: false,
      cropDir: join(staging.path, 'crops'),
      names: rows.map((r, i) => `${String(i).padStart(5, '0')}_${stemOf(r.image)}`),
      signal,
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
    if (flags.json) process.stdout.write(JSON.stringify({ out: join(outDir, 'regions.json'), items: rows.length, crops, device: result.device, timings: json.timings }) + '\n');
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

export const regionsCommand: Command = { help: () => flagHelp('regions', FLAGS), run };
