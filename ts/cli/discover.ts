/**
 * `anomalyncd discover`: the whole run from a dataset layout or a manifest to
 * predictions, metrics, timings and an HTML report.
 * @module
 */
import { basename, join, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../io/datasets.js';
import { discover, type DiscoverItem, type DiscoverResult } from '../stages/discover.js';
import { InvalidArgumentError } from '../core/errors.js';
import { stagingDir, writeFileAtomic } from '../io/files.js';
import { buildReportData, writeReport } from '../report/index.js';
import { generateSynthetic } from '../io/synthetic.js';
import { loadLabelled } from '../stages/train.js';
import type { Progress } from '../core/jobs.js';

/** Parsed `discover` flags (the CLI's flag parser lives in cli.ts). */
export interface DiscoverFlags {
  manifest?: string;
  dataset?: 'mtd' | 'mvtec' | 'synthetic';
  root?: string;
  category?: string;
  maps?: string;
  gtMaps?: boolean;
  k: number | 'auto';
  out: string;
  backbone?: string;
  arch?: string;
  labeled?: string;
  epochs?: number;
  seed?: number;
  threads?: number;
  tauAlpha?: number;
  json?: boolean;
  perType?: number;
}

async function itemsOf(flags: DiscoverFlags): Promise<{ items: DiscoverItem[]; dataset: string; tauAlpha: number; warnings: string[] }> {
  if (flags.dataset === 'synthetic') {
    const samples = generateSynthetic({ perType: flags.perType ?? 8, good: 4, seed: flags.seed ?? 1 });
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
    // SPEC §7: tau_alpha 100 for MVTec AD, 50 for any other dataset.
    tauAlpha: flags.dataset === 'mvtec' ? 100 : 50,
    warnings: data.warnings,
  };
}

/** Runs `discover` and writes predictions.json, metrics.json (labels known), timings.json and report.html into `flags.out`. */
export async function runDiscover(flags: DiscoverFlags, signal: AbortSignal, onProgress?: (p: Progress) => void): Promise<{ result: DiscoverResult; outDir: string }> {
  const t0 = performance.now();
  const { items, dataset, tauAlpha, warnings } = await itemsOf(flags);
  const loadMs = performance.now() - t0;
  const labeled = flags.labeled !== undefined ? await loadLabelled(resolve(flags.labeled), { signal }) : undefined;
  const outDir = resolve(flags.out);
  const staging = await stagingDir(outDir);
  let result: DiscoverResult | undefined;
  try {
    result = await discover(items, {
      k: flags.k,
      tauAlpha: flags.tauAlpha ?? tauAlpha,
      ...(flags.backbone !== undefined ? { backbone: resolve(flags.backbone) } : {}),
      ...(flags.arch !== undefined ? { arch: flags.arch } : {}),
      ...(labeled ? { labeled } : {}),
      ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
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
      regions: img.regions.map((r) => ({ box: r.box, cluster: r.cluster, probability: r.probability })),
    }));
    await writeFileAtomic(join(staging.path, 'predictions.json'), JSON.stringify({ k: result.k, kChoice: result.kChoice, searchRange: result.searchRange, images: predictions }, null, 1) + '\n');
    if (result.metrics) {
      const pick = (m: { nmi: number; ari: number; f1: number }) => ({ nmi: m.nmi, ari: m.ari, f1: m.f1 });
      await writeFileAtomic(join(staging.path, 'metrics.json'), JSON.stringify({ anomalyncd: pick(result.metrics.anomalyncd), kmeansBaseline: pick(result.metrics.kmeansBaseline) }, null, 1) + '\n');
    }
    await writeFileAtomic(join(staging.path, 'timings.json'), JSON.stringify(timings, null, 1) + '\n');
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
