// Open-set novelty on MTD (issue 11 item 3): leave each of the five defect types out
// of training in turn (MT_Free always known), ground-truth masks as maps
// (masksAsMaps), a randomly initialised small ViT (no pretrained weights can be
// obtained on these machines). Per fold: the known images are split (seeded) into a
// test part (25 %) and the discover part; discover trains K = 5 on the discover part,
// holding out 20 % of it to calibrate the novelty threshold (5 % false alarms); then
// the held-out type's images and the known test images are scored. Reported per
// novelty score: AUROC (held-out type vs known test images), TPR and the false-alarm
// rate on known test images at the calibrated threshold. Usage:
//   node dist/bench/open-set.bench.js [--per-class N] [--epochs N] [--arch JSON] [--threads T] [--folds a,b] [--write]
import { cpus, loadavg } from 'node:os';
import { loadDataset } from '../ts/io/datasets.js';
import { discover, predict, type DiscoverItem } from '../ts/stages/discover.js';
import { extractRegions } from '../ts/stages/regions.js';
import { imageNovelty } from '../ts/analysis/novelty.js';
import type { TrainedModel } from '../ts/stages/train.js';
import { auroc, calibrateThreshold, NOVELTY_SCORES, type NoveltyScore } from '../ts/analysis/novelty.js';
import { mulberry32 } from '../ts/core/random.js';
import { nativeVersions } from '../ts/native/versions.js';
import { args, flag, mtdRoot as mtd, writeResultsSection } from './cli-args.js';

const perClass = Number(flag('per-class') ?? 1000);
const epochs = Number(flag('epochs') ?? 10);
const arch = JSON.parse(flag('arch') ?? '{"patchSize":16,"embedDim":96,"depth":4,"numHeads":4,"maskLayers":2}');
const threads = Number(flag('threads') ?? 2);
const seed = 3407;
const DEFECTS = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'];
const folds = flag('folds')?.split(',') ?? DEFECTS;

const loadBefore = loadavg()[0]!;
const t0 = performance.now();
const data = await loadDataset({ kind: 'mtd', root: mtd, groundTruthAsMaps: true });
// Reduced per class (seeded) when --per-class is given.
const rand = mulberry32(seed);
const shuffled = <T>(xs: T[]): T[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
};
const byClass = new Map<string, DiscoverItem[]>();
for (const it of data.items) byClass.set(it.label!, [...(byClass.get(it.label!) ?? []), { image: it.image, map: it.map, label: it.label!, name: it.name }]);
const items = [...byClass.values()].flatMap((xs) => shuffled(xs).slice(0, perClass));

interface Row {
  type: string;
  nNovel: number;
  nKnownTest: number;
  nTrain: number;
  nCal: number;
  ms: number;
  scores: Record<NoveltyScore, { auroc: number; tpr: number; far: number }>;
  /** Exploratory (not shipped): mean cosine distance to the 5 nearest training crops' backbone features. */
  knn: { auroc: number; tpr: number; far: number };
}

const l2 = (v: Float32Array) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
/** Image kNN novelty: per crop, mean cosine distance to the 5 nearest training-crop features; merged with the region weights. */
async function knnNovelty(model: TrainedModel, bank: Float32Array[], its: DiscoverItem[]): Promise<number[]> {
  const regions = await extractRegions(its.map((i) => i.image), its.map((i) => i.map), { masksAsMaps: true, threads });
  const crops = regions.items.flatMap((item) => item.crops.map((c) => ({ image: c.image!, mask: c.mask! })));
  const emb = (await model.predict(crops, { embeddings: true, threads })).embeddings!.map(l2);
  let j = 0;
  return regions.items.map((item) => {
    const s = item.crops.map(() => {
      const e = emb[j++]!;
      const d = bank.map((b) => 1 - b.reduce((a, x, q) => a + x * e[q]!, 0)).sort((a, b) => a - b);
      return d.slice(0, 5).reduce((a, b) => a + b, 0) / Math.min(5, d.length);
    });
    return imageNovelty(s, item.crops.map((c) => c.maskArea), 50);
  });
}
const rows: Row[] = [];
for (const held of folds) {
  const tf = performance.now();
  const novel = items.filter((i) => i.label === held);
  const known = shuffled(items.filter((i) => i.label !== held));
  const nTest = Math.round(known.length * 0.25);
  const knownTest = known.slice(0, nTest);
  const fitSet = known.slice(nTest);
  const result = await discover(fitSet, { k: 5, masksAsMaps: true, arch, epochs, seed, threads, holdout: 0.2, falseAlarmRate: 0.05 });
  const model = result.model;
  try {
    const calItems = fitSet.filter((_, i) => result.images[i]!.heldOut);
    const base = model.inference!;
    const scores = {} as Row['scores'];
    for (const score of NOVELTY_SCORES) {
      model.inference = { ...base, noveltyScore: score, calibrationImages: 0 };
      const cal = await predict(model, calItems.map((i) => i.image), calItems.map((i) => i.map), { threads });
      const threshold = calibrateThreshold(cal.map((p) => p.novelty), 0.05);
      const test = await predict(model, [...knownTest, ...novel].map((i) => i.image), [...knownTest, ...novel].map((i) => i.map), { threads });
      const neg = test.slice(0, knownTest.length).map((p) => p.novelty);
      const pos = test.slice(knownTest.length).map((p) => p.novelty);
      scores[score] = { auroc: auroc(pos, neg), tpr: pos.filter((s) => s > threshold).length / pos.length, far: neg.filter((s) => s > threshold).length / neg.length };
    }
    const bank = result.crops.filter((c) => !result.images[c.image]!.heldOut).map((c) => l2(c.trained));
    const calK = await knnNovelty(model, bank, calItems);
    const thrK = calibrateThreshold(calK, 0.05);
    const negK = await knnNovelty(model, bank, knownTest);
    const posK = await knnNovelty(model, bank, novel);
    const knn = { auroc: auroc(posK, negK), tpr: posK.filter((s) => s > thrK).length / posK.length, far: negK.filter((s) => s > thrK).length / negK.length };
    rows.push({ type: held, knn, nNovel: novel.length, nKnownTest: knownTest.length, nTrain: fitSet.length - calItems.length, nCal: calItems.length, ms: performance.now() - tf, scores });
    process.stderr.write(`${held}: ${JSON.stringify(rows.at(-1))}\n`);
  } finally {
    model.dispose();
  }
}
const wall = performance.now() - t0;
const f = (x: number) => x.toFixed(3);
const mean = (score: NoveltyScore, key: 'auroc' | 'tpr' | 'far') => rows.reduce((a, r) => a + r.scores[score][key], 0) / rows.length;
const versions = nativeVersions();
const section = `<!-- open-set:start -->
## Open-set novelty

\`bench/open-set.bench.ts\` (issue 11): each MTD defect type left out of training in turn (MT_Free always known), GT masks as maps (\`masksAsMaps\`), K = 5.

- Machine: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores shared with other jobs, ${threads} threads; Node ${process.version}; libtorch ${versions.libtorch}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; ${(wall / 60000).toFixed(1)} min.
- Data: ${items.length} MTD test images${perClass < 1000 ? ` (**reduced**: at most ${perClass} per class, seeded, to fit the shared machine)` : ''}. Per fold the known images are split (seeded) into 25 % known test images and the discover set; discover holds out 20 % of its set (never trained on) to calibrate the threshold at a 5 % false-alarm rate.
- Model: **randomly initialised** ViT ${JSON.stringify(arch)} (no pretrained weights can be obtained here), ${epochs} epochs, no labelled set, seed ${seed}.
- AUROC: held-out type (positive) vs known test images (negative), image novelty. TPR / FAR: fraction of held-out-type / known test images above the calibrated threshold.
- Exploratory column \`knn\` (not shipped): mean cosine distance of a crop's trained backbone feature to its 5 nearest training crops, merged like the others and calibrated the same way (it would need the training features stored in the bundle).

| held-out type | knn AUROC | knn TPR | knn FAR |
|---|---|---|---|
${rows.map((r) => `| ${r.type} | ${f(r.knn.auroc)} | ${f(r.knn.tpr)} | ${f(r.knn.far)} |`).join('\n')}
| **mean** | **${f(rows.reduce((a, r) => a + r.knn.auroc, 0) / rows.length)}** | ${f(rows.reduce((a, r) => a + r.knn.tpr, 0) / rows.length)} | ${f(rows.reduce((a, r) => a + r.knn.far, 0) / rows.length)} |

| held-out type | novel / known test / train / calibration images | ${NOVELTY_SCORES.map((s) => `${s} AUROC | ${s} TPR | ${s} FAR`).join(' | ')} |
|---|---|${NOVELTY_SCORES.map(() => '---|---|---').join('|')}|
${rows.map((r) => `| ${r.type} | ${r.nNovel} / ${r.nKnownTest} / ${r.nTrain} / ${r.nCal} | ${NOVELTY_SCORES.map((s) => `${f(r.scores[s].auroc)} | ${f(r.scores[s].tpr)} | ${f(r.scores[s].far)}`).join(' | ')} |`).join('\n')}
| **mean** | | ${NOVELTY_SCORES.map((s) => `**${f(mean(s, 'auroc'))}** | ${f(mean(s, 'tpr'))} | ${f(mean(s, 'far'))}`).join(' | ')} |
<!-- open-set:end -->`;
process.stdout.write(section + '\n');
if (args.includes('--write')) writeResultsSection('open-set', section);
