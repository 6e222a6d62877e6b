// Region descriptors on MTD without any training (issue 11): do the label-free shape and
// appearance descriptors of analysis/descriptors separate MTD's defect types? Every MTD
// test image, GT masks as maps (masksAsMaps), one descriptor per image (its crops'
// descriptors merged with the region weights), standardised over the set. Reports:
//   * k-means NMI with the true K (K = 5 defect types; K = 6 with MT_Free), feature subsets;
//   * eigengap / silhouette K̂ over seeded stratified subsamples (as bench/k-estimation: at
//     most --per-type images per type) and on the whole set;
//   * leave-one-type-out AUROC of the `descriptor` novelty (kNN distance to the fit crops'
//     standardised descriptors; 25 % of the known images as known test images).
// Usage: node dist/bench/descriptors.bench.js [--per-type 12] [--subsamples 10] [--threads 1]
import { cpus, loadavg } from 'node:os';
import { loadDataset } from '../ts/io/datasets.js';
import { extractRegions } from '../ts/stages/regions.js';
import { DESCRIPTOR_DIM, DESCRIPTOR_NAMES, descriptorNovelty, fitScaler, regionDescriptor, standardise } from '../ts/analysis/descriptors.js';
import { regionWeights } from '../ts/analysis/merge.js';
import { kmeans } from '../ts/analysis/kmeans.js';
import { evaluate } from '../ts/analysis/metrics.js';
import { estimateKAsync } from '../ts/analysis/estimate-k-async.js';
import { auroc, imageNovelty } from '../ts/analysis/novelty.js';
import { mulberry32 } from '../ts/core/random.js';
import { flag, mtdRoot } from './cli-args.js';

const perType = Number(flag('per-type') ?? 12);
const subsamples = Number(flag('subsamples') ?? 10);
const threads = Number(flag('threads') ?? 1);
const tauAlpha = 50;
const loadBefore = loadavg();
const t0 = performance.now();

const data = await loadDataset({ kind: 'mtd', root: mtdRoot, groundTruthAsMaps: true });
const items = data.items.map((i) => ({ image: i.image, map: i.map, label: i.label! }));
const regions = await extractRegions(items.map((i) => i.image), items.map((i) => i.map), { masksAsMaps: true, threads });
const tD = performance.now();
const crops = regions.items.map((it) => it.crops.map((c) => ({ d: regionDescriptor(c.image!, c.mask!), area: c.maskArea })));
const descMs = performance.now() - tD;
const nCrops = crops.reduce((a, c) => a + c.length, 0);
process.stderr.write(`${items.length} images, ${nCrops} crops, descriptors ${descMs.toFixed(0)} ms (${(descMs / nCrops).toFixed(2)} ms/crop)\n`);

const imageDesc = crops.map((cs) => {
  const w = regionWeights(cs.map((c) => c.area), tauAlpha);
  const out = new Float64Array(DESCRIPTOR_DIM);
  cs.forEach((c, j) => c.d.forEach((v, d) => (out[d]! += w[j]! * v)));
  return out;
});

const subsets: Record<string, number[]> = {
  all: DESCRIPTOR_NAMES.map((_, d) => d),
  shape: [0, 1, 2, 3, 4, 5, 6, 16],
  appearance: [7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
};
const pickRows = (idx: number[], cols: number[]): Float64Array => {
  const s = fitScaler(idx.map((i) => imageDesc[i]!));
  const out = new Float64Array(idx.length * cols.length);
  idx.forEach((i, r) => {
    const z = standardise(imageDesc[i]!, s);
    cols.forEach((c, q) => (out[r * cols.length + q] = z[c]!));
  });
  return out;
};
const all = items.map((_, i) => i);
const defects = all.filter((i) => items[i]!.label !== 'MT_Free');
const lines: string[] = [];
const say = (s: string) => {
  lines.push(s);
  process.stderr.write(s + '\n');
};
for (const [name, cols] of Object.entries(subsets)) {
  for (const [setName, idx, K] of [['defects', defects, 5], ['all', all, 6]] as const) {
    const x = pickRows([...idx], cols);
    const km = kmeans(x, idx.length, cols.length, K, { seed: 0, nInit: 10 });
    const ev = evaluate(idx.map((i) => items[i]!.label), km.labels);
    say(`kmeans ${name} ${setName} K=${K}: NMI ${ev.nmi.toFixed(3)} ARI ${ev.ari.toFixed(3)} F1 ${ev.f1.toFixed(3)}`);
  }
}
// K estimation on subsamples (stratified, per seed) and the whole set.
const stratified = (idx: number[], seed: number): number[] => {
  const rand = mulberry32(seed);
  const byType = new Map<string, number[]>();
  for (const i of idx) byType.set(items[i]!.label, [...(byType.get(items[i]!.label) ?? []), i]);
  return [...byType.values()].flatMap((l) => l.map((v) => ({ v, r: rand() })).sort((a, b) => a.r - b.r).slice(0, perType).map((o) => o.v));
};
for (const [name, cols] of Object.entries(subsets)) {
  for (const [setName, idx, K] of [['defects', defects, 5], ['all', all, 6]] as const) {
    for (const method of ['eigengap', 'silhouette'] as const) {
      const ks: number[] = [];
      for (let s = 0; s < subsamples; s++) {
        const sub = stratified([...idx], s);
        const est = await estimateKAsync(pickRows(sub, cols), sub.length, cols.length, { method, kMin: 2, kMax: 10, seed: 3407 + s });
        ks.push(est.k);
      }
      const whole = await estimateKAsync(pickRows([...idx], cols), idx.length, cols.length, { method, kMin: 2, kMax: 10, seed: 3407 });
      const err = ks.map((k) => Math.abs(k - K));
      say(`K ${method} ${name} ${setName} K=${K}: subsamples [${ks.join(',')}] mean|err| ${(err.reduce((a, b) => a + b, 0) / ks.length).toFixed(2)} exact ${err.filter((e) => e === 0).length}/${ks.length} ±1 ${err.filter((e) => e <= 1).length}/${ks.length}; whole set ${whole.k}`);
    }
  }
}
// Leave-one-type-out novelty.
const DEFECTS = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'];
for (const [name, cols] of Object.entries(subsets)) {
  const aucs: number[] = [];
  for (const held of DEFECTS) {
    const rand = mulberry32(3407);
    const known = all.filter((i) => items[i]!.label !== held).map((v) => ({ v, r: rand() })).sort((a, b) => a.r - b.r).map((o) => o.v);
    const nTest = Math.round(known.length * 0.25);
    const knownTest = known.slice(0, nTest), fit = known.slice(nTest);
    const fitCrops = fit.flatMap((i) => crops[i]!.map((c) => c.d));
    const s = fitScaler(fitCrops);
    const sel = (z: Float64Array) => Float64Array.from(cols, (c) => z[c]!);
    const bank = new Float64Array(fitCrops.length * cols.length);
    fitCrops.forEach((d, r) => bank.set(sel(standardise(d, s)), r * cols.length));
    const score = (i: number) => imageNovelty(crops[i]!.map((c) => descriptorNovelty(sel(standardise(c.d, s)), bank, cols.length)), crops[i]!.map((c) => c.area), tauAlpha);
    const pos = all.filter((i) => items[i]!.label === held).map(score);
    const neg = knownTest.map(score);
    aucs.push(auroc(pos, neg));
  }
  say(`novelty ${name}: AUROC ${DEFECTS.map((d, i) => `${d} ${aucs[i]!.toFixed(3)}`).join(', ')}; mean ${(aucs.reduce((a, b) => a + b, 0) / aucs.length).toFixed(3)}`);
}
say(`# ${items.length} images (${defects.length} defect), ${nCrops} crops; ${cpus()[0]?.model}, ${threads} thread(s); load ${loadBefore.map((v) => v.toFixed(2)).join(' ')} -> ${loadavg().map((v) => v.toFixed(2)).join(' ')}; ${((performance.now() - t0) / 1000).toFixed(0)} s; ${new Date().toISOString()}`);
