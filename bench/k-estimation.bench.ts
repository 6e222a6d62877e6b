// How well each K estimator finds the number of defect types, and what the run gives when it
// goes on with the estimated K (issue 11, item 2). Per configuration and seed:
//   1. discover({k: 'auto', kMethod: 'mass'}) — the over-provisioned head (one training with
//      K_max clusters), then training with its K; its frozen image features are kept;
//   2. silhouette / stability / eigengap / bic on those frozen image features (estimateKAsync),
//      gcd on them plus the frozen features of the labelled set (gcd configuration only);
//   3. for every distinct K found (not yet trained), discover({k: K}) with the same options
//      (the same seed: the same random-init backbone, crops and features) for NMI/ARI/F1.
// |K̂ − K|, exact and ±1 rates per method and configuration, and the cost (ms) of each method.
//
// Configurations (issue 11): MTD test split, GT masks as maps (masksAsMaps when the library has
// it, else the masks through MEBin with the range fixed to [0, 255]), K = 6 (MT_Free as a type)
// and K = 5 (defect types only); synthetic K = 3, 5, 8 (MEBin's range set with 10 good images
// as well, as the reference sets it over the whole category); gcd: MTD K = 5 with two types' crops
// (half of their images) as the labelled set D^l.
//
// Full protocol:    node dist/bench/k-estimation.bench.js --seeds 3 --epochs 10
// Reduced (default): node dist/bench/k-estimation.bench.js --reduced   (1 epoch, tiny ViT, fewer images)
// Options: --configs mtd6,mtd5,syn3,syn5,syn8,gcd  --seeds N  --epochs E  --arch JSON  --threads T
//          --budget-min M (stop starting runs after M minutes; the table says what ran)  --write
//          --k-features backbone,descriptors,both (what the feature methods and gcd see; rows of the
//          non-backbone spaces are named "method [descriptors]" / "method [both]"; with a list other
//          than "backbone" the section is written between k-estimation-desc markers)
//          --mtd-per-type N / --syn-per-type N (images per type)  --no-downstream (K̂ only)
//          --marker NAME (write between NAME markers instead)
import { appendFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  discover,
  estimateKAsync,
  extractRegions,
  generateSynthetic,
  loadDataset,
  nativeVersions,
  type DiscoverItem,
  type DiscoverResult,
  type FeatureKMethod,
  type KMethod,
  type LabelledCrop,
} from 'anomalyncd';
import { poolCropRows } from '../ts/analysis/merge.js';
import { DESCRIPTOR_DIM, joinStandardised, regionDescriptor, type FeatureBlock, type KFeatures } from '../ts/analysis/descriptors.js';
import * as regionsModule from '../ts/stages/regions.js';
import { mulberry32 } from '../ts/core/random.js';
import { args, flag, mtdRoot, repoRoot as root, writeResultsSection } from './cli-args.js';

const reduced = args.includes('--reduced');
const seeds = Number(flag('seeds') ?? 3);
const epochs = Number(flag('epochs') ?? (reduced ? 1 : 10));
const arch = JSON.parse(flag('arch') ?? (reduced ? '{"patchSize":16,"embedDim":48,"depth":2,"numHeads":2,"maskLayers":1}' : '{"patchSize":16,"embedDim":192,"depth":6,"numHeads":3,"maskLayers":3}'));
const threads = Number(flag('threads') ?? cpus().length);
const budgetMs = Number(flag('budget-min') ?? Infinity) * 60000;
const configs = (flag('configs') ?? 'syn3,syn5,syn8,mtd5,gcd,mtd6').split(',');
// --no-downstream: K̂ only (no training per distinct K̂; NMI/ARI/F1 only where the mass run
// trained anyway), for runs on whole datasets within the time budget.
const downstream = !args.includes('--no-downstream');
// Reduced: MTD images subsampled per type (stratified, at most this many per type); synthetic images per type.
const mtdPerType = Number(flag('mtd-per-type') ?? (reduced ? 24 : Infinity));
const synPerType = Number(flag('syn-per-type') ?? (reduced ? 12 : 20));
const kRange: [number, number] = [2, 10];
const FEATURE_METHODS: FeatureKMethod[] = ['silhouette', 'stability', 'eigengap', 'bic'];
/** Good images per synthetic set: they only set MEBin's search range. */
const SYN_GOOD = 10;
const kFeatureList = (flag('k-features') ?? 'backbone').split(',') as KFeatures[];
const descMode = kFeatureList.some((f) => f !== 'backbone');
const hasMasksAsMaps = 'MASK_MAP_FIELDS' in regionsModule;
const outDir = join(root, '.bench-out');
mkdirSync(outDir, { recursive: true });
const log = join(outDir, 'k-estimation.jsonl');

interface Config {
  name: string;
  trueK: number;
  items: DiscoverItem[];
  labelled?: LabelledCrop[];
  mapOptions: Record<string, unknown>;
  methods: KMethod[];
}

const gtMapOptions = hasMasksAsMaps ? { masksAsMaps: true, maskLevel: 128 } : { range: [0, 255] as [number, number] };

function subsample<T extends { label?: string }>(items: T[], perType: number, seed: number): T[] {
  if (!Number.isFinite(perType)) return items;
  const rand = mulberry32(seed);
  const byType = new Map<string, T[]>();
  for (const it of items) byType.set(it.label!, [...(byType.get(it.label!) ?? []), it]);
  const out: T[] = [];
  for (const list of byType.values()) {
    const shuffled = list.map((v) => ({ v, r: rand() })).sort((a, b) => a.r - b.r).map((x) => x.v);
    out.push(...shuffled.slice(0, perType));
  }
  return out;
}

async function makeConfig(name: string, seed: number): Promise<Config> {
  if (name.startsWith('syn')) {
    const k = Number(name.slice(3));
    // MEBin's search range comes from the category's maps *including good ones* (METHOD.md
    // §2.1): without them min_th is the weakest defect's maximum (~240 here) and MEBin finds
    // no region in most maps (every crop the whole image). So good images set the range,
    // as they would in a factory, and only the defective ones are clustered.
    const all = generateSynthetic({ types: k, perType: synPerType, good: SYN_GOOD, size: 128, mapSize: 64, seed: 1000 + seed });
    const range = (await extractRegions(all.map((s) => s.image), all.map((s) => s.map), { threads, returnPixels: false })).searchRange;
    const samples = all.filter((s) => s.label !== 'good');
    return { name: `synthetic K=${k}`, trueK: k, items: samples.map((s) => ({ image: s.image, map: s.map, label: s.label, name: s.name })), mapOptions: { range }, methods: ['mass', ...FEATURE_METHODS] };
  }
  const data = await loadDataset({ kind: 'mtd', root: mtdRoot, groundTruthAsMaps: true });
  let items: DiscoverItem[] = data.items.map((i) => ({ image: i.image, map: i.map, name: i.name, label: i.label! }));
  if (name === 'mtd6') {
    items = subsample(items, mtdPerType, seed);
    return { name: 'MTD K=6 (MT_Free a type)', trueK: 6, items, mapOptions: gtMapOptions, methods: ['mass', ...FEATURE_METHODS] };
  }
  items = subsample(items.filter((i) => i.label !== 'MT_Free'), mtdPerType, seed);
  if (name === 'mtd5') return { name: 'MTD K=5 (defect types)', trueK: 5, items, mapOptions: gtMapOptions, methods: ['mass', ...FEATURE_METHODS] };
  // gcd: two types' crops (half of their images, drawn by seed) as D^l.
  const known = ['MT_Blowhole', 'MT_Break'];
  const rand = mulberry32(7000 + seed);
  const chosen = items.filter((i) => known.includes(i.label!) && rand() < 0.5);
  const regions = await extractRegions(chosen.map((i) => i.image), chosen.map((i) => i.map), { threads, ...gtMapOptions });
  const labelled: LabelledCrop[] = regions.items.flatMap((r, j) => r.crops.map((c) => ({ image: c.image!, mask: c.mask!, label: chosen[j]!.label! })));
  return { name: 'MTD K=5, D^l = 2 types (gcd)', trueK: 5, items, labelled, mapOptions: gtMapOptions, methods: ['gcd'] };
}

function imageFeatures(r: DiscoverResult, tauAlpha: number): { data: Float32Array; dim: number } {
  const dim = r.crops[0]!.frozen.length;
  return { data: poolCropRows(r.regions.items, (j) => r.crops[j]!.frozen, dim, tauAlpha, new Float32Array(r.images.length * dim)), dim };
}

/** Each image's region descriptor (crops' descriptors merged with the region weights), as discover does. */
function imageDescriptors(r: DiscoverResult, tauAlpha: number): FeatureBlock {
  const crops = r.regions.items.flatMap((item) => item.crops);
  const rows = (j: number) => crops[j]!.descriptor ?? regionDescriptor(crops[j]!.image!, crops[j]!.mask!);
  return { data: poolCropRows(r.regions.items, rows, DESCRIPTOR_DIM, tauAlpha, new Float64Array(r.images.length * DESCRIPTOR_DIM)), dim: DESCRIPTOR_DIM };
}

interface Row {
  config: string;
  seed: number;
  method: string;
  trueK: number;
  k: number;
  ms: number;
  nmi: number;
  ari: number;
  f1: number;
  images: number;
}
const rows: Row[] = [];
const started = performance.now();
const loadBefore = loadavg()[0]!;
const tauAlpha = 50;
const failures: string[] = [];

// Seed-major: under a time budget every configuration gets its first seed before any gets a second.
outer: for (let seed = 0; seed < seeds; seed++) {
  for (const name of configs) {
    if (performance.now() - started > budgetMs) {
      process.stderr.write(`budget reached: ${name} seed ${seed} and after not run\n`);
      break outer;
    }
    try {
      await runOne(name, seed);
    } catch (e) {
      failures.push(`${name} seed ${seed}: ${(e as Error).message}`);
      process.stderr.write(`FAILED ${name} seed ${seed}: ${(e as Error).stack}\n`);
    }
  }
}

async function runOne(name: string, seed: number): Promise<void> {
  {
    const cfg = await makeConfig(name, seed);
    const common = { ...cfg.mapOptions, arch, epochs, seed: 3407 + seed, threads, tauAlpha, kRange, ...(cfg.labelled ? { labelled: cfg.labelled } : {}) };
    const trained = new Map<number, { nmi: number; ari: number; f1: number }>();
    const pick = (r: DiscoverResult) => ({ nmi: r.metrics!.anomalyncd.nmi, ari: r.metrics!.anomalyncd.ari, f1: r.metrics!.anomalyncd.f1 });
    const found: { method: string; k: number; ms: number }[] = [];
    let features: { data: Float32Array; dim: number } | undefined;
    let descriptors: FeatureBlock | undefined;
    const t0 = performance.now();
    if (cfg.methods.includes('mass')) {
      const r = await discover(cfg.items, { ...common, k: 'auto', kMethod: 'mass' });
      found.push({ method: 'mass', k: r.k, ms: r.kChoice.ms! });
      trained.set(r.k, pick(r));
      features = imageFeatures(r, tauAlpha);
      descriptors = imageDescriptors(r, tauAlpha);
      r.model.dispose();
    }
    if (features === undefined) {
      // Frozen features without training: the same path discover takes (k given, 1 epoch is
      // not needed: only features); run the feature methods through discover itself for gcd,
      // once per feature space.
      for (const kf of kFeatureList) {
        const r = await discover(cfg.items, { ...common, k: 'auto', kMethod: cfg.methods[0]!, kFeatures: kf });
        found.push({ method: kf === 'backbone' ? cfg.methods[0]! : `${cfg.methods[0]!} [${kf}]`, k: r.k, ms: r.kChoice.ms! });
        trained.set(r.k, pick(r));
        r.model.dispose();
      }
    }
    for (const m of cfg.methods) {
      if (m === 'mass' || features === undefined || found.some((f) => f.method === m)) continue;
      for (const kf of kFeatureList) {
        const blocks = kf === 'backbone' ? [features!] : kf === 'descriptors' ? [descriptors!] : [descriptors!, features!];
        const x = kf === 'backbone' ? { fit: features!.data, dim: features!.dim } : joinStandardised(blocks, cfg.items.length);
        const est = await estimateKAsync(x.fit, cfg.items.length, x.dim, { method: m as FeatureKMethod, kMin: kRange[0], kMax: Math.min(kRange[1], cfg.items.length - 1), seed: 3407 + seed });
        found.push({ method: kf === 'backbone' ? m : `${m} [${kf}]`, k: est.k, ms: est.ms });
      }
    }
    const none = { nmi: NaN, ari: NaN, f1: NaN };
    for (const f of found) {
      if (downstream && !trained.has(f.k)) {
        const r = await discover(cfg.items, { ...common, k: f.k });
        trained.set(f.k, pick(r));
        r.model.dispose();
      }
      const row: Row = { config: cfg.name, seed, method: f.method, trueK: cfg.trueK, k: f.k, ms: f.ms, ...(trained.get(f.k) ?? none), images: cfg.items.length };
      rows.push(row);
      appendFileSync(log, JSON.stringify({ ...row, epochs, arch, reduced, hasMasksAsMaps, kFeatures: kFeatureList, at: new Date().toISOString() }) + '\n');
      process.stderr.write(`${cfg.name} seed ${seed} ${f.method}: K̂ ${f.k} (K ${cfg.trueK}), ${f.ms.toFixed(0)} ms, NMI ${(trained.get(f.k) ?? none).nmi.toFixed(3)}\n`);
    }
    process.stderr.write(`${cfg.name} seed ${seed}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }
}

const f3 = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(3));
const groups = new Map<string, Row[]>();
for (const r of rows) groups.set(`${r.config}|${r.method}`, [...(groups.get(`${r.config}|${r.method}`) ?? []), r]);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const table = [...groups.values()].map((g) => {
  const err = g.map((r) => Math.abs(r.k - r.trueK));
  return `| ${g[0]!.config} | ${g[0]!.method} | ${g[0]!.trueK} | ${g.map((r) => r.k).join(', ')} | ${f3(mean(err))} | ${f3(mean(err.map((e) => (e === 0 ? 1 : 0))))} | ${f3(mean(err.map((e) => (e <= 1 ? 1 : 0))))} | ${f3(mean(g.map((r) => r.nmi)))} | ${f3(mean(g.map((r) => r.ari)))} | ${f3(mean(g.map((r) => r.f1)))} | ${mean(g.map((r) => r.ms)).toFixed(0)} |`;
});
const byMethod = new Map<string, Row[]>();
for (const r of rows) byMethod.set(r.method, [...(byMethod.get(r.method) ?? []), r]);
const summary = [...byMethod].map(([m, g]) => {
  const err = g.map((r) => Math.abs(r.k - r.trueK));
  return `| ${m} | ${g.length} | ${f3(mean(err))} | ${f3(mean(err.map((e) => (e === 0 ? 1 : 0))))} | ${f3(mean(err.map((e) => (e <= 1 ? 1 : 0))))} | ${f3(mean(g.map((r) => r.nmi)))} | ${mean(g.map((r) => r.ms)).toFixed(0)} |`;
});
const versions = nativeVersions();
const marker = flag('marker') ?? (descMode ? 'k-estimation-desc' : 'k-estimation');
const section = `<!-- ${marker}:start -->
${descMode ? `### K estimation with region descriptors (\`bench/k-estimation.bench.ts ${args.filter((a) => a !== '--write').join(' ')}\`)` : '## K estimation (`bench/k-estimation.bench.ts`)'}

- Machine: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores shared with other jobs, ${threads} threads; Node ${process.version}; libtorch ${versions.libtorch}; ${new Date().toISOString().slice(0, 16)} UTC; load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; ${((performance.now() - started) / 60000).toFixed(1)} min in all.
- **${reduced || epochs < 10 || Number.isFinite(mtdPerType) || synPerType < 20 || arch.embedDim < 192 ? 'REDUCED protocol' : 'Full protocol'}**: ${seeds} seed(s), ${epochs} epoch(s), **randomly initialised** ViT ${JSON.stringify(arch)} (no pretrained weights can be obtained here), K searched in ${kRange.join('..')}; MTD ${Number.isFinite(mtdPerType) ? `subsampled to at most ${mtdPerType} images per type (stratified, per seed)` : 'test split, all images'}; synthetic ${synPerType} images per type (128 px; MEBin's search range from them and ${SYN_GOOD} good images); MTD maps: GT masks ${hasMasksAsMaps ? 'as maps (masksAsMaps, level 128)' : 'through MEBin with the range fixed to [0, 255] (this build has no masksAsMaps)'}.
- Configurations run: ${[...new Set(rows.map((r) => r.config))].join('; ') || 'none'}.${failures.length ? ` Failed runs: ${failures.join('; ')}.` : ''}
- NMI/ARI/F1: AnomalyNCD's image clusters when the run goes on with the method's K̂ (trained once per distinct K̂${downstream ? '' : '; **not run here** (`--no-downstream`): only where the mass run trained anyway, else –'}). ms: the estimator's own cost (mass: including its K_max training run).

| configuration | method | K | K̂ per seed | mean abs. error | exact | within ±1 | NMI | ARI | F1 | ms |
|---|---|---|---|---|---|---|---|---|---|---|
${table.join('\n')}

Per method, over every configuration it ran on:

| method | runs | mean abs. error | exact | within ±1 | mean NMI | mean ms |
|---|---|---|---|---|---|---|
${summary.join('\n')}
<!-- ${marker}:end -->`;
process.stdout.write(section + '\n');
if (args.includes('--write')) writeResultsSection(marker, section);
