#!/usr/bin/env node
/**
 * The `anomalyncd` command line: dispatches to one module per command
 * (ts/cli/commands/), each with its flag table for the one parser (flags.ts).
 *
 * Exit codes: 0 success, 2 usage or invalid argument, 3 bad input data or
 * unreadable/unwritable files, 4 bad checkpoint, 130 aborted (Ctrl-C),
 * 1 internal failure.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnomalyNCDError } from '../core/errors.js';
import { packageRoot } from '../native/loader.js';
import type { Command } from './output.js';

// Each command's module loads when it runs: `anomalyncd mebin` must not pay for
// the report, discover and training code at start-up.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  mebin: async () => (await import('./commands/mebin.js')).mebinCommand,
  regions: async () => (await import('./commands/regions.js')).regionsCommand,
  demo: async () => (await import('./commands/discover.js')).demoCommand,
  embed: async () => (await import('./commands/embed.js')).embedCommand,
  discover: async () => (await import('./commands/discover.js')).discoverCommand,
  train: async () => (await import('./commands/train.js')).trainCommand,
  doctor: async () => (await import('./commands/doctor.js')).doctorCommand,
  build: async () => (await import('./commands/build.js')).buildCommand,
  predict: async () => (await import('./commands/predict.js')).predictCommand,
};

const controller = new AbortController();

const USAGE = `anomalyncd <command> [options]

Commands:
  demo     [--per-type N] [--k K] [--epochs N] [--out DIR] [--seed S] [--threads T] [--json] [discover options]
           discover end to end on the embedded synthetic defect generator (no download), with a small
           random-init ViT: prints per-stage ms and metrics, writes anomalyncd-demo/report.html.
  mebin    --maps DIR --out FILE.json [--binary-out DIR] [--sample-rate 4] [--min-interval 4]
           [--no-erode] [--range MIN,MAX] [--threads T] [--device D] [--json]
  regions  --manifest FILE.csv --out DIR [MEBin options] [--threads T] [--device D] [--json]
  discover (--manifest FILE.csv | --dataset mtd|mvtec --root DIR [--category C] (--maps DIR | --gt-maps)
            | --dataset synthetic [--per-type N]) --k K|auto --out DIR [--backbone FILE] [--arch PRESET|JSON]
           [--labeled DIR] [--epochs N] [--seed S] [--threads T] [--tau-alpha A] [--masks-as-maps [--mask-level N]]
           [--holdout F] [--false-alarm-rate R] [--device D] [--precision fp32|bf16] [--json]
           MEBin -> crops -> training -> prediction -> merging; writes predictions.json, metrics.json
           (labels known), timings.json, report.html and model.safetensors.
  train    see 'anomalyncd train --help'
  predict  --model BUNDLE --manifest FILE.csv --out DIR [--device D] [--precision fp32|bf16] [--masks-as-maps [--mask-level N]]
           [--tau-alpha A] [--threads T] [--json]
           classifies new images with a saved bundle (never trains): predictions.json with novelty and
           unknown per image, metrics.json when the manifest has labels.
  embed    --checkpoint FILE --arch PRESET|JSON --images X.npy --masks M.npy --out Y.npy
           [--threads T] [--batch-size N] [--device cpu|cuda|cuda:N|auto] [--precision fp32|bf16] [--json]
  doctor   [--json] [--no-self-test]
           which native binary loaded from where (and why others were not), libtorch/OpenCV/OpenBLAS,
           CUDA, CPU features, thread defaults, and a ~1 s self-test of each stage.
  build    [--cuda | --no-cuda] [--libtorch DIR] [--jobs N] [--json]
           compile the native addons in place (cmake-js) for this machine; then loaded first.

'anomalyncd <command> --help' lists the command's flags. --device D: cpu, cuda, cuda:N or auto (default: the
GPU when the build has CUDA and one is present, else the CPU).
Exit codes: 0 ok, 2 usage/invalid argument, 3 bad input, file error or over a limit, 4 bad checkpoint, 5 device unavailable,
6 out of (device) memory, 130 aborted, 1 internal error.
`;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof AnomalyNCDError)) return 1;
  switch (error.code) {
    case 'ERR_INVALID_ARGUMENT': return 2;
    case 'ERR_BAD_INPUT':
    case 'ERR_LIMIT':
    case 'ERR_IO': return 3;
    case 'ERR_CHECKPOINT': return 4;
    case 'ERR_DEVICE': return 5;
    case 'ERR_OUT_OF_MEMORY': return 6;
    case 'ERR_ABORTED': return 130;
    default: return 1;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  process.once('SIGINT', () => controller.abort());
  try {
    const cmd = command !== undefined && Object.hasOwn(COMMANDS, command) ? await COMMANDS[command]!() : undefined;
    if (cmd) {
      if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) process.stdout.write(cmd.help());
      else await cmd.run(rest, controller.signal);
      return 0;
    }
    switch (command) {
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

const status = await main(process.argv.slice(2));
// Ctrl-C: 130 whatever the command was doing when the signal came (its staged outputs are discarded).
process.exitCode = controller.signal.aborted ? 130 : status;
