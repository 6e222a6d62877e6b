// NCD training throughput on the CPU (METHOD.md §5): crops per second (each crop = two
// augmented views, one forward/backward of 2B rows) for a small ViT and for ViT-S/16
// at 224 (random init: speed does not depend on the weights), and how the time splits
// between augmentation (C++ workers, overlapped with the model) and the model.
//
//   npx tsc -p tsconfig.json && node dist/bench/train.bench.js [--write] [--quick]
//
// --write  replaces the section between the train-bench markers in bench/RESULTS.md
// --quick  fewer crops and batches (a smoke run; do not --write its figures)
//
// Crops: MTD images (read at run time from <repo>/../shared/data/mtd or $MTD_ROOT) cut by
// extractRegions with their ground-truth masks (>= 128) as maps.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { extractRegions, fit, nativeVersions, readCropFiles, Tensor, type FitOptions, type TrainCrop, type TrainEvent } from 'anomalyncd';
import { mtdRoot, writeResultsSection, resultsPath } from './cli-args.js';

const args = new Set(process.argv.slice(2));
const WRITE = args.has('--write');
const QUICK = args.has('--quick');
for (const a of args) if (a !== '--write' && a !== '--quick') throw new Error(`Unknown argument ${a} (expected --write, --quick)`);

const mtd = mtdRoot;
if (!existsSync(mtd)) throw new Error(`MTD not found at ${mtd} (set MTD_ROOT)`);
const CLASSES = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Free', 'MT_Uneven'];
const THREADS = availableParallelism();

async function mtdCrops(perClass: number): Promise<TrainCrop[]> {
  const train = new Set(readFileSync(join(mtd, 'train_filenames.txt'), 'utf8').split(/\s+/).filter(Boolean));
  const rows = CLASSES.flatMap((cls) =>
    readdirSync(join(mtd, cls, 'Imgs'))
      .filter((f) => f.endsWith('.jpg') && !train.has(f))
      .sort()
      .slice(0, perClass)
      .map((f) => join(mtd, cls, 'Imgs', f.slice(0, -4))),
  );
  const decoded = await readCropFiles(rows.map((r) => `${r}.jpg`), rows.map((r) => `${r}.png`), { threads: THREADS });
  const maps = decoded.map((d) => new Tensor('uint8', d.mask.shape, Uint8Array.from(d.mask.data, (v) => (v >= 128 ? 255 : 0))));
  const { items } = await extractRegions(decoded.map((d) => d.image), maps, { threads: THREADS });
  return items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
}

interface Case {
  name: string;
  threads: number;
  arch: FitOptions['arch'];
  gradFromBlock: number;
  crops: number;
  epochs: number;
}

interface Row {
  name: string;
  threads: number;
  params: string;
  batches: number;
  crops: number;
  wallMs: number;
  cropsPerS: number;
  augmentMs: number;
  modelMs: number;
  waitMs: number;
  augmentPerCropMs: number;
  modelPerCropMs: number;
}

async function runCase(c: Case, pool: TrainCrop[]): Promise<Row> {
  const crops = pool.slice(0, c.crops);
  const events: TrainEvent[] = [];
  await fit({ unlabelled: crops }, {
    k: 6,
    arch: c.arch!,
    gradFromBlock: c.gradFromBlock,
    epochs: c.epochs,
    batchSize: 32,
    seed: 1,
    threads: c.threads,
    onProgress: (e) => events.push(e),
  }).then((m) => m.dispose());
  // The last epoch is measured (earlier epochs warm up allocators and caches).
  const lastEpoch = c.epochs - 1;
  const epoch = events.find((e) => e.type === 'epoch' && e.epoch === lastEpoch)!;
  const batches = events.filter((e) => e.type === 'batch' && e.epoch === lastEpoch);
  const n = batches.reduce((s, e) => s + e.rows / 2, 0);
  const augmentMs = batches.reduce((s, e) => s + e.augmentMs, 0);
  const modelMs = batches.reduce((s, e) => s + e.modelMs, 0);
  const waitMs = batches.reduce((s, e) => s + e.waitMs, 0);
  const arch = typeof c.arch === 'string' ? c.arch : JSON.stringify(c.arch);
  return {
    name: c.name,
    threads: c.threads,
    params: arch,
    batches: batches.length,
    crops: n,
    wallMs: epoch.ms,
    cropsPerS: (n / epoch.ms) * 1000,
    augmentMs,
    modelMs,
    waitMs,
    augmentPerCropMs: augmentMs / n,
    modelPerCropMs: modelMs / n,
  };
}

const fmt = (v: number, d = 1) => v.toFixed(d);

async function main(): Promise<void> {
  const started = performance.now();
  const load0 = loadavg()[0]!;
  const v = nativeVersions();
  const pool = await mtdCrops(QUICK ? 4 : 11);
  const small = { patchSize: 16, embedDim: 64, depth: 4, numHeads: 4, maskLayers: 2 };
  const smallName = 'small ViT (patch 16, dim 64, depth 4, 4 heads, 2 mask layers)';
  const vitsName = 'ViT-S/16 (dino_vits16 geometry, 224², random init)';
  const cases: Case[] = [
    { name: smallName, threads: 1, arch: small, gradFromBlock: 3, crops: QUICK ? 24 : 64, epochs: 2 },
    { name: smallName, threads: THREADS, arch: small, gradFromBlock: 3, crops: QUICK ? 24 : 64, epochs: 2 },
    { name: vitsName, threads: 1, arch: 'dino_vits16', gradFromBlock: 11, crops: QUICK ? 16 : 64, epochs: QUICK ? 1 : 2 },
    { name: vitsName, threads: THREADS, arch: 'dino_vits16', gradFromBlock: 11, crops: QUICK ? 16 : 64, epochs: QUICK ? 1 : 2 },
  ].filter((c, i, all) => all.findIndex((d) => d.name === c.name && d.threads === c.threads) === i);
  const rows: Row[] = [];
  for (const c of cases) {
    const r = await runCase(c, pool);
    rows.push(r);
    process.stderr.write(`${r.name}, ${r.threads} threads: ${fmt(r.cropsPerS, 2)} crops/s\n`);
  }
  const load1 = loadavg()[0]!;
  const lines: string[] = [];
  lines.push('## NCD training throughput on the CPU (`bench/train.bench.ts`)', '');
  lines.push(
    `- Machine: ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${availableParallelism()} cores; Node ${process.version}; libtorch ${v.libtorch}, OpenCV ${v.opencv}; ${new Date().toISOString().slice(0, 10)}.`,
    `- libtorch threads as in the table, as many augmentation workers (the default); batch 32 (64 rows: two views per crop), SGD step included; reference heads (4 heads, projection 2048-2048-256), k = 6, no labelled set.`,
    `- Crops: ${pool.length} anomaly-centred MTD crops (ground-truth masks >= 128 as maps through \`extractRegions\`); each run trains on the first N of them; the figures are from the run's last epoch (the first warms up).`,
    `- Load average (1 min): ${fmt(load0, 2)} before, ${fmt(load1, 2)} after.${load0 > 1 ? ' **Taken under load**: other processes competed for the cores; the figures are pessimistic.' : ''} Whole run: ${fmt((performance.now() - started) / 1000, 0)} s.`,
    '',
    '| model | threads | crops (batches) | epoch wall s | **crops/s** (2 views each) | augmentation ms/crop | model ms/crop | augmentation share of the work | model waited for augmentation |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of rows)
    lines.push(
      `| ${r.name} | ${r.threads} | ${r.crops} (${r.batches}) | ${fmt(r.wallMs / 1000, 2)} | **${fmt(r.cropsPerS, 2)}** | ${fmt(r.augmentPerCropMs, 1)} | ${fmt(r.modelPerCropMs, 1)} | ${fmt((100 * r.augmentMs) / (r.augmentMs + r.modelMs), 1)} % | ${fmt((100 * r.waitMs) / r.wallMs, 1)} % of the wall time |`,
    );
  lines.push(
    '',
    'Augmentation ms/crop is the wall time of preparing a batch (both views of every crop, on the worker pool, while the previous batch trains) divided by its crops; model ms/crop covers the forward of the 2B rows, the losses, the backward and the SGD step; the share is augmentation / (augmentation + model). With few cores the overlapped augmentation competes with libtorch for the same cores, so the two parts slow each other down; and when other processes also take the cores, libtorch\'s OpenMP workers wait on each other at every operation, which is why 2 threads came out slower than 1 here.',
  );
  const section = lines.join('\n');
  process.stdout.write(section + '\n');
  if (WRITE) {
    writeResultsSection('train-bench', section);
    process.stderr.write(`updated ${resultsPath}\n`);
  }
}

await main();
