/**
 * What the report shows ({@link ReportData}), how it is checked, and how it is
 * built from a {@link discover} run ({@link buildReportData}), so library
 * users get the same report as the CLI.
 * @module
 */
import { basename } from 'node:path';
import { InvalidArgumentError, shown } from '../core/errors.js';
import { defaulted, int, resolveOptions, str, type Field, type SchemaFor } from '../core/options.js';
import type { KScore } from '../analysis/cluster.js';
import type { ClassLabel, ClusterMatch } from '../analysis/metrics.js';
import { pca2d } from '../analysis/pca.js';
import { pngDataUrl } from '../io/png.js';
import type { ArchSpec } from '../stages/model.js';
import type { DiscoverResult } from '../stages/discover.js';
import { loadedBinaryLine } from '../native/versions.js';


/** A labelled value shown in the summary (e.g. `{ label: 'Backbone', value: 'ViT-B/16' }`). */
export interface ReportFact {
  label: string;
  value: string | number;
}

/** How the number of clusters K was chosen. */
export type KChoice = 'fixed' | 'estimated';

/** The run at a glance. */
export interface ReportSummary {
  /** Number of input images. */
  images: number;
  /** Number of anomaly crops (regions) clustered. */
  crops: number;
  /** The number of clusters K used. */
  k: number;
  /** `'fixed'`: given by the user; `'estimated'`: chosen from data (see {@link ReportData.kCurve}). */
  kChosenBy: KChoice;
  /** A short free explanation of the K choice, e.g. `'max mean silhouette over K = 2…8'`. */
  kDetail?: string;
  /** Further facts shown as summary cards (backbone, epochs, dataset, …). */
  extra?: readonly ReportFact[];
}

/** One sample crop shown in a cluster's gallery. */
export interface ReportSample {
  /** The image: a `data:image/(png|jpeg|gif|webp);base64,…` URL, e.g. from `pngDataUrl`. Anything else is rejected. */
  src: string;
  /** The crop's true label, when known. */
  label?: ClassLabel;
  /** A short caption, e.g. the source image's name. */
  caption?: string;
}

/** One discovered cluster (a candidate defect type). */
export interface ReportCluster {
  /** The cluster id as produced by the clustering (an integer; a negative id means "unassigned"). */
  id: number;
  /** Optional human name shown beside the id. */
  name?: string;
  /** Number of images assigned to this cluster. */
  images: number;
  /** Number of anomaly regions (crops) assigned to this cluster. */
  regions: number;
  /** Sample crops; the first {@link RenderReportOptions.maxSamplesPerCluster} are shown. */
  samples: readonly ReportSample[];
}

/** One crop in the 2-D embedding plot. */
export interface EmbeddingPoint {
  x: number;
  y: number;
  /** Its cluster id (sets the colour). */
  cluster: number;
  /** Its true label, when known (sets the marker shape). */
  label?: ClassLabel;
}

/** A 2-D embedding of the crops (e.g. their first two principal components). */
export interface ReportEmbedding {
  points: readonly EmbeddingPoint[];
  /** The projection's name, shown in the caption (default `'PCA'`). */
  method?: string;
}

/** Cluster × true-label counts. */
export interface ReportConfusion {
  /** Row keys: cluster ids. */
  clusters: readonly number[];
  /** Column keys: true labels. */
  labels: readonly ClassLabel[];
  /** `counts[r][c]`: items of cluster `clusters[r]` whose true label is `labels[c]` (non-negative). */
  counts: readonly (readonly number[])[];
  /** The Hungarian cluster → label matching (as `evaluate(...).mapping`); matched cells are outlined. */
  mapping?: readonly ClusterMatch[];
  /** What is counted (default `'images'`). */
  unit?: string;
}

/** Clustering quality of one method (higher is better), e.g. `{ method: 'AnomalyNCD', ...evaluate(t, p) }`. */
export interface ReportMetrics {
  method: string;
  nmi: number;
  ari: number;
  f1: number;
}

/** The K-estimation curve. */
export interface ReportKCurve {
  /** Score for each K tried (as `estimateK(...).curve`). */
  curve: readonly KScore[];
  /** The chosen K, highlighted (default: the summary's K when it is on the curve). */
  chosen?: number;
  /** What the score is (default `'mean silhouette'`). */
  scoreName?: string;
}

/** Wall time of one pipeline stage. */
export interface StageTiming {
  stage: string;
  /** Milliseconds (finite, ≥ 0). */
  ms: number;
}

/** Everything {@link renderReport} shows. Only `title`, `summary` and `clusters` are required. */
export interface ReportData {
  /** Document and page title. */
  title: string;
  /** A line under the title (dataset, command, …). */
  subtitle?: string;
  /** When the run finished; printed verbatim (strings) or as ISO-8601 (dates). Omitted: not shown, so output is reproducible. */
  generatedAt?: string | Date;
  /** The backbone was randomly initialised (no pretrained weights): shows a prominent warning. */
  randomBackbone?: boolean;
  /** Free warnings shown at the top. */
  warnings?: readonly string[];
  summary: ReportSummary;
  /** The discovered clusters, in display order. */
  clusters: readonly ReportCluster[];
  embedding?: ReportEmbedding;
  /** Shown when the truth is known. */
  confusion?: ReportConfusion;
  /** Shown when the truth is known: AnomalyNCD vs baselines. */
  metrics?: readonly ReportMetrics[];
  kCurve?: ReportKCurve;
  timings?: readonly StageTiming[];
  /** The native binary and library versions that computed it (shown in the footer), e.g. from a discover run. */
  builtWith?: string;
}

/** Code-point order, numbers before strings, numbers ascending (as NumPy's `np.unique`). @internal */
export function compareLabels(a: ClassLabel, b: ClassLabel): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A string or a finite number. @internal */
export function isLabel(v: unknown): v is ClassLabel {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** Options of {@link renderReport}. */
export interface RenderReportOptions {
  /** Sample crops shown per cluster (default 12, 0..1000). */
  maxSamplesPerCluster?: number;
}

/** The table of {@link RenderReportOptions}. @internal */
export const RENDER_REPORT_OPTIONS = {
  maxSamplesPerCluster: defaulted(int({ min: 0, max: 1000, default: 12, doc: 'Sample crops shown per cluster.' })),
} satisfies SchemaFor<RenderReportOptions>;

const DATA_URL = /^data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]*={0,2}$/;

function bad(message: string): never {
  throw new InvalidArgumentError(`Report data: ${message}`);
}
function checkCount(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(`${what} must be a non-negative integer, got ${shown(v)}`);
}
function checkString(v: unknown, what: string, allowEmpty = true): asserts v is string {
  if (typeof v !== 'string' || (!allowEmpty && v.trim() === '')) bad(`${what} must be a ${allowEmpty ? '' : 'non-empty '}string`);
}
function checkArray(v: unknown, what: string): asserts v is readonly unknown[] {
  if (!Array.isArray(v)) bad(`${what} must be an array`);
}

/**
 * Counts items per (cluster, true label): the input of {@link ReportData.confusion}.
 * Rows are the distinct clusters ascending, columns the distinct labels
 * (numbers ascending, then strings in code-point order).
 *
 * @param pred predicted cluster id per item (integers).
 * @param truth true label per item, same length.
 * @param mapping optional Hungarian matching, e.g. `evaluate(truth, pred).mapping`.
 * @internal
 */
export function confusionMatrix(pred: ArrayLike<number>, truth: ArrayLike<ClassLabel>, mapping?: readonly ClusterMatch[]): ReportConfusion {
  if (pred == null || truth == null || pred.length !== truth.length)
    throw new InvalidArgumentError(`confusionMatrix needs as many predictions as labels (${pred?.length} vs ${truth?.length})`);
  const clusters = new Set<number>();
  const labels = new Set<ClassLabel>();
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!, t = truth[i]!;
    if (!Number.isInteger(p)) throw new InvalidArgumentError(`confusionMatrix: prediction ${i} (${shown(p)}) is not an integer`);
    if (!isLabel(t)) throw new InvalidArgumentError(`confusionMatrix: label ${i} is not a string or finite number`);
    clusters.add(p);
    labels.add(t);
  }
  const rows = [...clusters].sort((a, b) => a - b);
  const cols = [...labels].sort(compareLabels);
  const rowOf = new Map(rows.map((c, i) => [c, i]));
  const colOf = new Map(cols.map((l, i) => [l, i]));
  const counts = rows.map(() => new Array<number>(cols.length).fill(0));
  for (let i = 0; i < pred.length; i++) counts[rowOf.get(pred[i]!)!]![colOf.get(truth[i]!)!]! += 1;
  const out: ReportConfusion = { clusters: rows, labels: cols, counts };
  if (mapping) out.mapping = mapping;
  return out;
}

/** Throws {@link InvalidArgumentError} naming the first malformed field of `data`. @internal */
export function validateReportData(data: ReportData, maxSamples: number): void {
  if (typeof data !== 'object' || data === null) bad('expected an object');
  checkString(data.title, 'title', false);
  if (data.subtitle !== undefined) checkString(data.subtitle, 'subtitle');
  if (data.generatedAt !== undefined && typeof data.generatedAt !== 'string' && !(data.generatedAt instanceof Date && Number.isFinite(data.generatedAt.getTime())))
    bad('generatedAt must be a string or a valid Date');
  if (data.builtWith !== undefined) checkString(data.builtWith, 'builtWith');
  if (data.warnings !== undefined) {
    checkArray(data.warnings, 'warnings');
    data.warnings.forEach((w, i) => checkString(w, `warnings[${i}]`));
  }
  const s = data.summary;
  if (typeof s !== 'object' || s === null) bad('summary is required');
  checkCount(s.images, 'summary.images');
  checkCount(s.crops, 'summary.crops');
  checkCount(s.k, 'summary.k');
  if (s.kChosenBy !== 'fixed' && s.kChosenBy !== 'estimated') bad(`summary.kChosenBy must be 'fixed' or 'estimated'`);
  if (s.kDetail !== undefined) checkString(s.kDetail, 'summary.kDetail');
  if (s.extra !== undefined) {
    checkArray(s.extra, 'summary.extra');
    s.extra.forEach((f, i) => {
      checkString(f?.label, `summary.extra[${i}].label`);
      if (typeof f.value !== 'string' && typeof f.value !== 'number') bad(`summary.extra[${i}].value must be a string or number`);
    });
  }
  checkArray(data.clusters, 'clusters');
  const ids = new Set<number>();
  data.clusters.forEach((c, i) => {
    if (typeof c !== 'object' || c === null) bad(`clusters[${i}] must be an object`);
    if (!Number.isInteger(c.id)) bad(`clusters[${i}].id must be an integer`);
    if (ids.has(c.id)) bad(`cluster id ${c.id} appears twice`);
    ids.add(c.id);
    if (c.name !== undefined) checkString(c.name, `clusters[${i}].name`);
    checkCount(c.images, `clusters[${i}].images`);
    checkCount(c.regions, `clusters[${i}].regions`);
    checkArray(c.samples, `clusters[${i}].samples`);
    c.samples.slice(0, maxSamples).forEach((sm, j) => {
      if (typeof sm?.src !== 'string' || !DATA_URL.test(sm.src))
        bad(`clusters[${i}].samples[${j}].src must be a data:image/(png|jpeg|gif|webp);base64 URL`);
      if (sm.label !== undefined && !isLabel(sm.label)) bad(`clusters[${i}].samples[${j}].label must be a string or finite number`);
      if (sm.caption !== undefined) checkString(sm.caption, `clusters[${i}].samples[${j}].caption`);
    });
  });
  if (data.embedding !== undefined) {
    checkArray(data.embedding.points, 'embedding.points');
    data.embedding.points.forEach((p, i) => {
      if (typeof p?.x !== 'number' || typeof p.y !== 'number') bad(`embedding.points[${i}] needs numeric x and y`);
      if (!Number.isInteger(p.cluster)) bad(`embedding.points[${i}].cluster must be an integer`);
      if (p.label !== undefined && !isLabel(p.label)) bad(`embedding.points[${i}].label must be a string or finite number`);
    });
    if (data.embedding.method !== undefined) checkString(data.embedding.method, 'embedding.method');
  }
  const cm = data.confusion;
  if (cm !== undefined) {
    checkArray(cm.clusters, 'confusion.clusters');
    checkArray(cm.labels, 'confusion.labels');
    checkArray(cm.counts, 'confusion.counts');
    cm.clusters.forEach((c, i) => Number.isInteger(c) || bad(`confusion.clusters[${i}] must be an integer`));
    if (new Set(cm.clusters).size !== cm.clusters.length) bad('confusion.clusters has duplicates');
    cm.labels.forEach((l, i) => isLabel(l) || bad(`confusion.labels[${i}] must be a string or finite number`));
    if (new Set(cm.labels).size !== cm.labels.length) bad('confusion.labels has duplicates');
    if (cm.counts.length !== cm.clusters.length) bad(`confusion.counts has ${cm.counts.length} rows for ${cm.clusters.length} clusters`);
    cm.counts.forEach((row, r) => {
      checkArray(row, `confusion.counts[${r}]`);
      if (row.length !== cm.labels.length) bad(`confusion.counts[${r}] has ${row.length} cells for ${cm.labels.length} labels`);
      row.forEach((v, c) => (typeof v === 'number' && Number.isFinite(v) && v >= 0) || bad(`confusion.counts[${r}][${c}] must be a finite number ≥ 0`));
    });
    if (cm.mapping !== undefined) {
      checkArray(cm.mapping, 'confusion.mapping');
      cm.mapping.forEach((mp, i) => {
        if (!Number.isInteger(mp?.cluster)) bad(`confusion.mapping[${i}].cluster must be an integer`);
        if (mp.label !== null && !isLabel(mp.label)) bad(`confusion.mapping[${i}].label must be a label or null`);
      });
    }
    if (cm.unit !== undefined) checkString(cm.unit, 'confusion.unit');
  }
  if (data.metrics !== undefined) {
    checkArray(data.metrics, 'metrics');
    data.metrics.forEach((m, i) => {
      checkString(m?.method, `metrics[${i}].method`);
      for (const key of ['nmi', 'ari', 'f1'] as const) if (typeof m[key] !== 'number') bad(`metrics[${i}].${key} must be a number`);
    });
  }
  if (data.kCurve !== undefined) {
    checkArray(data.kCurve.curve, 'kCurve.curve');
    data.kCurve.curve.forEach((p, i) => {
      if (!Number.isInteger(p?.k)) bad(`kCurve.curve[${i}].k must be an integer`);
      if (typeof p.score !== 'number') bad(`kCurve.curve[${i}].score must be a number`);
    });
    if (data.kCurve.chosen !== undefined && !Number.isInteger(data.kCurve.chosen)) bad('kCurve.chosen must be an integer');
    if (data.kCurve.scoreName !== undefined) checkString(data.kCurve.scoreName, 'kCurve.scoreName');
  }
  if (data.timings !== undefined) {
    checkArray(data.timings, 'timings');
    data.timings.forEach((t, i) => {
      checkString(t?.stage, `timings[${i}].stage`);
      if (typeof t.ms !== 'number' || !Number.isFinite(t.ms) || t.ms < 0) bad(`timings[${i}].ms must be a finite number ≥ 0`);
    });
  }
}

/** Options of {@link buildReportData}. */
export interface DiscoverReportOptions {
  /** The data set's description, shown in the subtitle (e.g. `'mvtec bottle'`). */
  dataset?: string;
  /**
   * The backbone checkpoint the run used, shown by file name; absent: a
   * randomly initialised ViT, which the report flags prominently
   * (default: the path recorded in `result.model`).
   */
  backbone?: string;
  /** The architecture the run asked for, shown beside "random init" when there is no backbone (default: the trained model's shape). */
  arch?: ArchSpec;
  /** Warnings shown at the top (default `result.warnings`). */
  warnings?: readonly string[];
}

/** The table of {@link DiscoverReportOptions}. @internal */
export const DISCOVER_REPORT_OPTIONS = {
  dataset: str({ doc: "The data set's description." }),
  backbone: str({ doc: 'The backbone checkpoint (default: the one recorded in the model).' }),
  arch: {
    doc: 'The architecture asked for (default: the trained shape).',
    check(v: unknown, name: string): ArchSpec {
      if (typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v))) return v as ArchSpec;
      throw new InvalidArgumentError(`Option '${name}' must be a preset name, JSON text or a config object`);
    },
  } satisfies Field<ArchSpec>,
  warnings: {
    doc: 'Warnings shown at the top (default: the run\'s).',
    check(v: unknown, name: string): readonly string[] {
      if (!Array.isArray(v) || !v.every((w) => typeof w === 'string')) throw new InvalidArgumentError(`Option '${name}' must be an array of strings`);
      return [...v] as string[];
    },
  } satisfies Field<readonly string[]>,
} satisfies SchemaFor<DiscoverReportOptions>;

/** Sample crops per cluster the built report carries (the renderer shows up to its `maxSamplesPerCluster` of them). */
const SAMPLES_PER_CLUSTER = 12;
/** Side in pixels of the sample thumbnails. */
const THUMBNAIL_SIDE = 96;

function describeArch(arch: ArchSpec | undefined, result: DiscoverResult): string {
  if (typeof arch === 'string') return arch;
  if (arch !== undefined) return JSON.stringify(arch);
  const a = result.model.arch;
  return `ViT patch ${a.patchSize}, width ${a.embedDim}, depth ${a.depth}`;
}

/** The summary's explanation of an estimated K: the method, what it maximised, its cost. */
function kDetailOf(choice: DiscoverResult['kChoice']): string {
  const what: Record<string, string> = {
    silhouette: 'best mean silhouette of k-means over the frozen image features',
    stability: 'most stable k-means clustering over subsample pairs (ARI) of the frozen image features',
    eigengap: 'largest eigengap of the kNN-graph Laplacian of the frozen image features',
    bic: 'lowest BIC of a full-covariance Gaussian mixture over the frozen image features',
    gcd: 'best k-means accuracy on the labelled set (GCD-style bounded search)',
    mass: 'clusters holding real mass in a model trained with K_max clusters',
  };
  const method = choice.method ?? 'silhouette';
  const cost = choice.ms !== undefined ? `; ${choice.ms < 1000 ? `${choice.ms.toFixed(0)} ms` : `${(choice.ms / 1000).toFixed(1)} s`}` : '';
  const on = choice.features === 'descriptors' ? ' (on the region descriptors, not the backbone features)' : choice.features === 'both' ? ' (on the backbone features joined with the region descriptors)' : '';
  return `${method}: ${what[method] ?? method}${on}${cost}`;
}

/**
 * The report of a {@link discover} run, as `anomalyncd discover` writes it:
 * the summary, one gallery per discovered type (the first crop of up to 12
 * member images), a PCA of the trained crop embeddings, and with labels the
 * confusion matrix and AnomalyNCD vs the k-means baseline; the K curve when K
 * was estimated; per-stage timings (per-map and per-image rates left out).
 *
 * ```ts
 * const result = await discover(items, { k: 'auto', backbone: 'dino_vitbase8_pretrain.pth' });
 * await writeReport('out/report.html', buildReportData(result, { dataset: 'my line' }));
 * ```
 * The crops' pixels must still be there (`result.regions.items[i].crops[0].image`).
 */
export function buildReportData(result: DiscoverResult, options: DiscoverReportOptions = {}): ReportData {
  const r = result as Partial<DiscoverResult> | null;
  if (typeof r !== 'object' || r === null || !Array.isArray(r.images) || !Array.isArray(r.crops) || typeof r.regions !== 'object' || r.regions === null || typeof r.model !== 'object')
    throw new InvalidArgumentError('buildReportData() needs the result of discover()');
  try {
    return reportDataOf(result, options);
  } catch (e) {
    // A result of the right outline whose insides are not a discover result's (found by test/55-boundary-fuzz).
    if (e instanceof TypeError || e instanceof RangeError) throw new InvalidArgumentError(`buildReportData(): not a discover result (${e.message})`, { cause: e });
    throw e;
  }
}

function reportDataOf(result: DiscoverResult, options: DiscoverReportOptions): ReportData {
  const o = resolveOptions(DISCOVER_REPORT_OPTIONS, options);
  const clusterIds = [...new Set(result.images.map((i) => i.cluster))].sort((a, b) => a - b);
  const clusters: ReportCluster[] = clusterIds.map((id) => {
    const members = result.images.map((img, i) => ({ img, i })).filter(({ img }) => img.cluster === id);
    const samples = members.slice(0, SAMPLES_PER_CLUSTER).map(({ img, i }) => {
      const crop = result.regions.items[i]!.crops[0]!;
      if (crop.image === undefined) throw new InvalidArgumentError(`buildReportData: the crops of image ${i} carry no pixels`);
      return { src: pngDataUrl(crop.image, THUMBNAIL_SIDE), caption: img.name, ...(img.label !== undefined ? { label: img.label } : {}) };
    });
    return { id, images: members.length, regions: result.images.reduce((n, img) => n + img.regions.filter((r) => r.cluster === id).length, 0), samples };
  });
  const backbone = o.backbone ?? result.model.backbone.path ?? undefined;
  const dim = result.crops[0]?.trained.length ?? 0;
  const data: ReportData = {
    title: 'anomalyncd — discovered defect types',
    subtitle: o.dataset !== undefined ? `${o.dataset}; ${result.images.length} images` : `${result.images.length} images`,
    randomBackbone: backbone === undefined,
    warnings: o.warnings ?? result.warnings,
    summary: {
      images: result.images.length,
      crops: result.crops.length,
      k: result.k,
      kChosenBy: result.kChoice.mode === 'auto' ? 'estimated' : 'fixed',
      ...(result.kChoice.mode === 'auto' ? { kDetail: kDetailOf(result.kChoice) } : {}),
      extra: [
        { label: 'Backbone', value: backbone ? basename(backbone) : `random init (${describeArch(o.arch, result)})` },
        { label: 'Epochs', value: result.model.epochsDone },
        { label: 'Search range', value: result.searchRange.join('–') },
        { label: 'Device', value: `${result.device}${result.precision === 'bf16' ? ' (bf16)' : ''}` },
        // Open-set flags (issue 11): images whose novelty exceeds the calibrated threshold.
        ...(result.calibration
          ? [
              {
                label: 'Unknown (novel) images',
                value: `${result.images.filter((i) => i.unknown).length} of ${result.images.length} (novelty > ${result.calibration.threshold.toFixed(4)}, ${result.calibration.score} score, calibrated to ${(result.calibration.falseAlarmRate * 100).toFixed(1)} % false alarms on ${result.calibration.images} held-out images)`,
              },
            ]
          : []),
      ],
    },
    clusters,
    timings: Object.entries(result.timings)
      .filter(([stage]) => !/PerMap|PerImage/.test(stage))
      .map(([stage, ms]) => ({ stage, ms })),
  };
  if (dim > 0 && result.crops.length >= 2) {
    const features = new Float32Array(result.crops.length * dim);
    result.crops.forEach((c, j) => features.set(c.trained, j * dim));
    const xy = pca2d(features, result.crops.length, dim);
    data.embedding = {
      points: result.crops.map((c, j) => {
        const label = result.images[c.image]!.label;
        return { x: xy[2 * j]!, y: xy[2 * j + 1]!, cluster: result.images[c.image]!.cluster, ...(label !== undefined ? { label } : {}) };
      }),
    };
  }
  if (result.metrics) {
    data.metrics = [
      { method: 'AnomalyNCD', ...result.metrics.anomalyncd },
      { method: 'k-means baseline (frozen features)', ...result.metrics.kmeansBaseline },
    ];
    data.confusion = confusionMatrix(
      result.images.map((i) => i.cluster),
      result.images.map((i) => i.label!),
      result.metrics.anomalyncd.mapping,
    );
  }
  if (result.kChoice.curve) {
    data.kCurve = { curve: result.kChoice.curve, chosen: result.k };
    if (result.kChoice.scoreName !== undefined) data.kCurve.scoreName = result.kChoice.scoreName;
  }
  const builtWith = loadedBinaryLine();
  if (builtWith !== undefined) data.builtWith = builtWith;
  return data;
}
