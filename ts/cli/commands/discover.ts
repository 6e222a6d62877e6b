/**
 * `anomalyncd discover` (and `demo`, the same run on the embedded synthetic
 * data set): the whole run from a dataset layout or a manifest to
 * predictions, metrics, timings and an HTML report.
 * @internal
 * @module
 */
import { basename, join, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../../io/datasets.js';
import { discover, type DiscoverItem, type DiscoverResult } from '../../stages/discover.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { stagingDir, writeFileAtomic } from '../../io/files.js';
import { buildReportData, writeReport } from '../../report/index.js';
import { generateSynthetic } from '../../io/synthetic.js';
import { loadLabelled } from '../../stages/train.js';
import { DEFAULT_K_METHOD, K_METHODS } from '../../analysis/estimate-k-async.js';
import { DEFAULT_K_FEATURES, K_FEATURES } from '../../analysis/descriptors.js';
import { DEFAULT_NOVELTY_SCORE, NOVELTY_SCORES } from '../../analysis/novelty.js';
import type { Progress } from '../../core/jobs.js';
import { choice, count, custom, deviceFlag, flagHelp, MASK_MAP_FLAGS, maskMapOptions, parseFlags, positive, precisionFlag, text, toggle, withDefaults, type ParsedFlags } from '../flags.js';
import { progressBar, timingTable, warn, type Command } from '../output.js';

const FLAGS = {
  manifest: text({ placeholder: 'FILE.csv', help: "CSV with header 'image,map[,label]'." }),
  dataset: choice(['mtd', 'mvtec', 'synthetic'] as const, { help: 'A dataset layout under --root, or the embedded generator.' }),
  root: text({ placeholder: 'DIR', help: 'Dataset root.' }),
  category: text({ placeholder: 'C', help: 'MVTec AD category.' }),
  maps: text({ placeholder: 'DIR', help: "Anomaly maps of a detector, in the dataset's layout." }),
  'gt-maps': toggle({ help: 'Use the ground-truth masks as maps (the ideal detector).' }),
  ...MASK_MAP_FLAGS,
  k: custom(
    (v, flag): number | 'auto' => {
      if (v !== 'auto' && !/^\d+$/.test(v)) throw new InvalidArgumentError(`${flag} must be a positive integer or 'auto' (got '${v}')`);
      return v === 'auto' ? 'auto' : Number(v);
    },
    { required: '--k K|auto is required', placeholder: 'K|auto', help: 'Number of defect types, or estimate it.' },
  ),
  'k-method': choice(K_METHODS, { help: `How --k auto estimates K (default ${DEFAULT_K_METHOD}; see README "Choosing K").` }),
  'k-features': choice(K_FEATURES, { help: `What --k auto's feature methods work on: backbone features, region descriptors, or both (default ${DEFAULT_K_FEATURES}).` }),
  'novelty-score': choice(NOVELTY_SCORES, { help: `Per-region novelty score (default ${DEFAULT_NOVELTY_SCORE}; see README "Is this a new type?").` }),
  out: text({ required: '--out DIR is required', placeholder: 'DIR', help: 'Output folder.' }),
  backbone: text({ placeholder: 'FILE', help: 'Pretrained DINO checkpoint (absent: random init).' }),
  arch: text({ placeholder: 'PRESET|JSON', help: 'Architecture.' }),
  labeled: text({ placeholder: 'DIR', help: 'Labelled known classes: a folder or a manifest.' }),
  epochs: count({ help: 'Training epochs.' }),
  seed: count({ placeholder: 'S', help: 'Seed.' }),
  threads: count({ placeholder: 'T', help: 'Worker threads (default: all cores).' }),
  'tau-alpha': positive({ placeholder: 'A', help: 'Region-merging temperature (default 100 for MVTec AD, else 50).' }),
  'per-type': count({ default: 8, help: 'Synthetic images per defect type.' }),
  holdout: custom(
    (v, flag): number => {
      const x = Number(v);
      if (v.trim() === '' || !Number.isFinite(x) || x < 0 || x > 0.9) throw new InvalidArgumentError(`${flag} must be a fraction in 0..0.9 (got '${v}')`);
      return x;
    },
    { placeholder: 'F', help: 'Fraction of images held out from training to calibrate novelty (default 0.2; 0: none, as the reference).' },
  ),
  'false-alarm-rate': positive({ placeholder: 'R', help: 'False-alarm rate of the novelty threshold (default 0.05).' }),
  device: deviceFlag,
  precision: precisionFlag,
  json: toggle({ help: 'Print a JSON summary.' }),
} as const;

/** `demo`: discover over the embedded synthetic generator with a small random-init ViT (no download). */
const DEMO_FLAGS = withDefaults(FLAGS, {
  dataset: 'synthetic',
  k: 5,
  out: 'anomalyncd-demo',
  arch: JSON.stringify({ patchSize: 16, embedDim: 96, depth: 4, numHeads: 4, maskLayers: 2 }),
  epochs: 8,
});

/** Parsed `discover` flags. */
export type DiscoverFlags = ParsedFlags<typeof FLAGS>;

async function itemsOf(flags: DiscoverFlags): Promise<{ items: DiscoverItem[]; dataset: string; tauAlpha: number; warnings: string[] }> {
  if (flags.dataset === 'synthetic') {
    const samples = generateSynthetic({ perType: flags.perType, ...(flags.seed !== undefined ? { seed: flags.seed } : {}) });
    return {
      items: samples.map((s) => ({ image: s.image, map: s.map, label: s.label, name: s.name })),
      dataset: 'synthetic (embedded generator)',
      tauAlpha: 50,
      warnings: [],
    };
  }
  let data: Dataset;
  if (flags.manifest !== undefined) {
    if (flags.dataset !== undefined) throw new InvalidArgumentError('Give either --manifest or --dataset, not both');
    data = await loadDataset({ kind: 'manifest', path: resolve(flags.manifest) });
  } else if (flags.dataset === 'mtd' || flags.dataset === 'mvtec') {
    if (flags.root === undefined) throw new InvalidArgumentError(`--dataset ${flags.dataset} needs --root DIR`);
    const mapsOrGt = flags.maps !== undefined ? { maps: resolve(flags.maps) } : { groundTruthAsMaps: true };
    if (flags.maps === undefined && !flags.gtMaps)
      throw new InvalidArgumentError('Give --maps DIR (anomaly maps of a detector) or --gt-maps (ground-truth masks as maps, the ideal detector)');
    if (flags.dataset === 'mvtec') {
      if (flags.category === undefined) throw new InvalidArgumentError('--dataset mvtec needs --category C');
      data = await loadDataset({ kind: 'mvtec', root: resolve(flags.root), category: flags.category, ...mapsOrGt });
    } else data = await loadDataset({ kind: 'mtd', root: resolve(flags.root), ...mapsOrGt });
  } else throw new InvalidArgumentError('Give --manifest FILE.csv or --dataset mtd|mvtec --root DIR (or --dataset synthetic)');
  return {
    items: data.items.map((i) => ({ image: i.image, map: i.map, name: i.name, ...(i.label !== undefined ? { label: i.label } : {}) })),
    dataset: flags.manifest !== undefined ? `manifest ${basename(flags.manifest)}` : `${flags.dataset} ${flags.category ?? ''}`.trim(),
    // METHOD.md §7: tau_alpha 100 for MVTec AD, 50 for any other dataset.
    tauAlpha: flags.dataset === 'mvtec' ? 100 : 50,
    warnings: data.warnings,
  };
}

/** Runs `discover` and writes predictions.json, metrics.json (labels known), timings.json and report.html into `flags.out`. */
export async function runDiscover(flags: DiscoverFlags, signal: AbortSignal, onProgress?: (p: Progress) => void): Promise<{ result: DiscoverResult; outDir: string }> {
  const t0 = performance.now();
  maskMapOptions(flags);  // usage errors before any work
  const { items, dataset, tauAlpha, warnings } = await itemsOf(flags);
  const loadMs = performance.now() - t0;
  const labelled = flags.labeled !== undefined ? await loadLabelled(resolve(flags.labeled), { signal }) : undefined;
  if (flags.kMethod !== undefined && flags.k !== 'auto') throw new InvalidArgumentError('--k-method needs --k auto');
  if (flags.kFeatures !== undefined && flags.k !== 'auto') throw new InvalidArgumentError('--k-features needs --k auto');
  const outDir = resolve(flags.out);
  const staging = await stagingDir(outDir, signal);
  let result: DiscoverResult | undefined;
  try {
    result = await discover(items, {
      k: flags.k,
      ...(flags.kMethod !== undefined ? { kMethod: flags.kMethod } : {}),
      ...(flags.kFeatures !== undefined ? { kFeatures: flags.kFeatures } : {}),
      ...(flags.noveltyScore !== undefined ? { noveltyScore: flags.noveltyScore } : {}),
      ...maskMapOptions(flags),
      ...(flags.holdout !== undefined ? { holdout: flags.holdout } : {}),
      ...(flags.falseAlarmRate !== undefined ? { falseAlarmRate: flags.falseAlarmRate } : {}),
      tauAlpha: flags.tauAlpha ?? tauAlpha,
      ...(flags.backbone !== undefined ? { backbone: resolve(flags.backbone) } : {}),
      ...(flags.arch !== undefined ? { arch: flags.arch } : {}),
      ...(labelled ? { labelled } : {}),
      ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
      ...(flags.device !== undefined ? { device: flags.device } : {}),
      ...(flags.precision !== undefined ? { precision: flags.precision } : {}),
      signal,
      ...(onProgress ? { onProgress } : {}),
    });
    const allWarnings = [...warnings, ...result.warnings];
    const timings = { load: loadMs, ...result.timings };
    result.timings = timings;
    const predictions = result.images.map((img) => ({
      image: img.name,
      ...(img.label !== undefined ? { label: img.label } : {}),
      cluster: img.cluster,
      probabilities: img.probabilities,
      novelty: img.novelty,
      unknown: img.unknown,
      heldOut: img.heldOut,
      regions: img.regions.map((r) => ({ box: r.box, cluster: r.cluster, probability: r.probability, novelty: r.novelty })),
    }));
    await writeFileAtomic(
      join(staging.path, 'predictions.json'),
      JSON.stringify({ k: result.k, kChoice: result.kChoice, searchRange: result.searchRange, calibration: result.calibration, images: predictions }, null, 1) + '\n',
    );
    // The trained bundle, so that `anomalyncd predict --model DIR/model.safetensors` can follow.
    await result.model.save(join(staging.path, 'model.safetensors'), { signal });
    if (result.metrics) {
      const pick = (m: { nmi: number; ari: number; f1: number }) => ({ nmi: m.nmi, ari: m.ari, f1: m.f1 });
      await writeFileAtomic(join(staging.path, 'metrics.json'), JSON.stringify({ anomalyncd: pick(result.metrics.anomalyncd), kmeansBaseline: pick(result.metrics.kmeansBaseline) }, null, 1) + '\n');
    }
    await writeFileAtomic(join(staging.path, 'timings.json'), JSON.stringify({ ...timings, device: result.device, mebinDevice: result.regions.device, precision: result.precision }, null, 1) + '\n');
    await writeReport(
      join(staging.path, 'report.html'),
      buildReportData(result, {
        dataset,
        warnings: allWarnings,
        ...(flags.backbone !== undefined ? { backbone: flags.backbone } : {}),
        // The name the user gave, or the preset a random init falls back to.
        arch: flags.arch ?? 'dino_vitb8',
      }),
    );
    await staging.commit();
    result.warnings = allWarnings;
    return { result, outDir };
  } catch (e) {
    result?.model.dispose();
    await staging.discard();
    throw e;
  }
}

async function run(args: string[], signal: AbortSignal, command: 'discover' | 'demo'): Promise<void> {
  const flags = parseFlags(command, command === 'demo' ? DEMO_FLAGS : FLAGS, args);
  if (flags.backbone === undefined)
    process.stderr.write(
      '\n*** WARNING: no --backbone given: the ViT is RANDOMLY INITIALISED. Clusters will be far worse than with a\n' +
        '*** pretrained DINO checkpoint (e.g. dino_vitbase8_pretrain.pth; see README).\n\n',
    );
  const bar = progressBar('discover');
  let lastStage = '';
  const { result, outDir } = await runDiscover(flags, signal, (p) => {
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
      process.stdout.write(JSON.stringify({ out: outDir, k: result.k, kChoice: result.kChoice, metrics: result.metrics ?? null, device: result.device, precision: result.precision, timings: result.timings, warnings: result.warnings }) + '\n');
      return;
    }
    process.stdout.write(`\n${result.images.length} images -> ${result.k} defect types (${result.kChoice.mode === 'auto' ? `K estimated by ${result.kChoice.method} in ${Math.round(result.kChoice.ms ?? 0)} ms` : 'K given'}) -> ${outDir}\n`);
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

export const discoverCommand: Command = { help: () => flagHelp('discover', FLAGS), run: (args, signal) => run(args, signal, 'discover') };
export const demoCommand: Command = { help: () => flagHelp('demo', DEMO_FLAGS), run: (args, signal) => run(args, signal, 'demo') };
