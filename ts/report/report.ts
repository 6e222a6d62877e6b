/**
 * The end-of-run HTML report: one self-contained document (inline CSS and
 * SVG, images as `data:` URLs, no script, a Content-Security-Policy that
 * forbids every network fetch) that opens offline and prints cleanly.
 *
 * ```ts
 * import { confusionMatrix, evaluate, pca2d, pngDataUrl, writeReport } from 'anomalyncd';
 * const xy = pca2d(features, n, dim);
 * await writeReport('out/report.html', {
 *   title: 'AnomalyNCD — bottle',
 *   summary: { images: 40, crops: 52, k: 4, kChosenBy: 'estimated' },
 *   clusters: [{ id: 0, images: 12, regions: 15, samples: [{ src: pngDataUrl(crop, 96), label: 'crack' }] }],
 *   embedding: { method: 'PCA', points: preds.map((c, i) => ({ x: xy[2 * i]!, y: xy[2 * i + 1]!, cluster: c })) },
 *   confusion: confusionMatrix(imagePred, imageTruth, evaluate(imageTruth, imagePred).mapping),
 * });
 * ```
 * Every string from the caller is HTML-escaped; image sources must be
 * `data:image/…;base64,` URLs.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { writeFileAtomic } from '../io/files.js';
import type { KScore } from '../analysis/cluster.js';
import type { ClassLabel, ClusterMatch } from '../analysis/metrics.js';
import { mulberry32 } from '../core/random.js';

// ---------------------------------------------------------------------------
// data model
// ---------------------------------------------------------------------------

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

/** A 2-D embedding of the crops, e.g. from {@link pca2d}. */
export interface ReportEmbedding {
  points: readonly EmbeddingPoint[];
  /** The projection's name, shown in the caption (default `'PCA'`). */
  method?: string;
}

/** Cluster × true-label counts, e.g. from {@link confusionMatrix}. */
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
}

/** Options of {@link renderReport}. */
export interface RenderReportOptions {
  /** Sample crops shown per cluster (default 12, 0..1000). */
  maxSamplesPerCluster?: number;
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes `& < > " '` so that any string is safe as HTML text or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
const esc = escapeHtml;

const DATA_URL = /^data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]*={0,2}$/;

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const msFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function fmtInt(v: number): string {
  return intFormat.format(v);
}
function fmtScore(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}
/** Short number for SVG coordinates. */
function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Code-point order, numbers before strings, numbers ascending (as NumPy's `np.unique`). */
function compareLabels(a: ClassLabel, b: ClassLabel): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isLabel(v: unknown): v is ClassLabel {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

function bad(message: string): never {
  throw new InvalidArgumentError(`Report data: ${message}`);
}
function checkCount(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(`${what} must be a non-negative integer, got ${String(v)}`);
}
function checkString(v: unknown, what: string, allowEmpty = true): asserts v is string {
  if (typeof v !== 'string' || (!allowEmpty && v.trim() === '')) bad(`${what} must be a ${allowEmpty ? '' : 'non-empty '}string`);
}
function checkArray(v: unknown, what: string): asserts v is readonly unknown[] {
  if (!Array.isArray(v)) bad(`${what} must be an array`);
}

/** Categorical colours (Tableau 10), then golden-angle hues. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#79706e'];
const UNASSIGNED = '#b8bec6';

function clusterColor(rank: number): string {
  if (rank < PALETTE.length) return PALETTE[rank]!;
  const hue = Math.round((rank * 137.508) % 360);
  return `hsl(${hue} 55% ${rank % 2 ? 42 : 55}%)`;
}

/** Filled marker outlines centred on (0, 0), about 9 px across. */
const MARKERS = [
  '<circle r="4.2"/>',
  '<rect x="-3.7" y="-3.7" width="7.4" height="7.4"/>',
  '<path d="M0-5 4.6 3.2H-4.6Z"/>',
  '<path d="M0-5.2 5.2 0 0 5.2-5.2 0Z"/>',
  '<path d="M0 5-4.6-3.2H4.6Z"/>',
  '<path d="M-1.6-5h3.2v3.4H5v3.2H1.6V5h-3.2V1.6H-5v-3.2h3.4Z"/>',
  '<path d="M-3.5-5.2 0-1.7 3.5-5.2 5.2-3.5 1.7 0 5.2 3.5 3.5 5.2 0 1.7-3.5 5.2-5.2 3.5-1.7 0-5.2-3.5Z"/>',
  '<path d="M0-5.5 1.3-1.8 5.2-1.7 2.1.7 3.2 4.5 0 2.3-3.2 4.5-2.1.7-5.2-1.7-1.3-1.8Z"/>',
  '<path d="M0-5 4.3-2.5V2.5L0 5-4.3 2.5V-2.5Z"/>',
  '<path d="M0-5 4.8-1.5 2.9 4.1H-2.9L-4.8-1.5Z"/>',
];

// ---------------------------------------------------------------------------
// public helpers
// ---------------------------------------------------------------------------

/**
 * Counts items per (cluster, true label): the input of {@link ReportData.confusion}.
 * Rows are the distinct clusters ascending, columns the distinct labels
 * (numbers ascending, then strings in code-point order).
 *
 * @param pred predicted cluster id per item (integers).
 * @param truth true label per item, same length.
 * @param mapping optional Hungarian matching, e.g. `evaluate(truth, pred).mapping`.
 */
export function confusionMatrix(pred: ArrayLike<number>, truth: ArrayLike<ClassLabel>, mapping?: readonly ClusterMatch[]): ReportConfusion {
  if (pred == null || truth == null || pred.length !== truth.length)
    throw new InvalidArgumentError(`confusionMatrix needs as many predictions as labels (${pred?.length} vs ${truth?.length})`);
  const clusters = new Set<number>();
  const labels = new Set<ClassLabel>();
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!, t = truth[i]!;
    if (!Number.isInteger(p)) throw new InvalidArgumentError(`confusionMatrix: prediction ${i} (${String(p)}) is not an integer`);
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

/** Modified Gram–Schmidt (twice) on the `b` columns of Q (column-major, m rows); collapsed columns are refilled from `rand`. */
function orthonormalize(Q: Float64Array, m: number, b: number, rand: () => number): void {
  for (let j = 0; j < b; j++) {
    const qj = Q.subarray(j * m, (j + 1) * m);
    for (let attempt = 0; attempt < 4; attempt++) {
      let before = 0;
      for (let i = 0; i < m; i++) before += qj[i]! * qj[i]!;
      for (let pass = 0; pass < 2; pass++)
        for (let p = 0; p < j; p++) {
          const qp = Q.subarray(p * m, (p + 1) * m);
          let d = 0;
          for (let i = 0; i < m; i++) d += qp[i]! * qj[i]!;
          for (let i = 0; i < m; i++) qj[i]! -= d * qp[i]!;
        }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += qj[i]! * qj[i]!;
      if (norm > 1e-24 * Math.max(before, 1e-300) && norm > 1e-300) {
        const s = 1 / Math.sqrt(norm);
        for (let i = 0; i < m; i++) qj[i]! *= s;
        break;
      }
      for (let i = 0; i < m; i++) qj[i] = rand() - 0.5;
    }
  }
}

/** Eigen-decomposition of a small symmetric matrix (row-major, n×n) by cyclic Jacobi; eigenvalues descending, vectors as columns of V. */
function jacobiEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        total += a[i * n + j]! ** 2;
        if (i !== j) off += a[i * n + j]! ** 2;
      }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * Projects `n` row-major samples of `dim` features onto their first two
 * principal components, for the report's embedding plot.
 *
 * The samples are centred; the smaller of the Gram matrix (`n×n`, when
 * `n ≤ dim`) and the covariance matrix (`dim×dim`) is formed in float64 and
 * its top eigenvectors found by block power (subspace) iteration with
 * Rayleigh–Ritz steps from a fixed seed, so the result is deterministic. Each
 * axis' sign is fixed so that its largest-magnitude coordinate is positive.
 * Axes the data do not span (rank < 2, n < 2) are zero.
 *
 * @returns `Float32Array` of `2n` interleaved coordinates `x0, y0, x1, y1, …`.
 * @throws {@link InvalidArgumentError} on bad sizes or non-finite features.
 */
export function pca2d(features: Float32Array | Float64Array, n: number, dim: number): Float32Array {
  if (!(features instanceof Float32Array || features instanceof Float64Array)) throw new InvalidArgumentError('pca2d needs a Float32Array or Float64Array');
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(dim) || dim < 0) throw new InvalidArgumentError(`pca2d: n (${n}) and dim (${dim}) must be non-negative integers`);
  if (features.length !== n * dim) throw new InvalidArgumentError(`pca2d: ${n}×${dim} needs ${n * dim} values, got ${features.length}`);
  const out = new Float32Array(2 * n);
  if (n < 2 || dim < 1) return out;
  const X = new Float64Array(n * dim);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n * dim; i++) {
    const v = features[i]!;
    if (!Number.isFinite(v)) throw new InvalidArgumentError(`pca2d: feature ${i} is ${v}`);
    mean[i % dim]! += v;
  }
  for (let k = 0; k < dim; k++) mean[k]! /= n;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) X[i * dim + k] = features[i * dim + k]! - mean[k]!;

  const gram = n <= dim;
  const m = gram ? n : dim;
  const S = new Float64Array(m * m);
  if (gram) {
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += X[i * dim + k]! * X[j * dim + k]!;
        S[i * m + j] = s;
        S[j * m + i] = s;
      }
  } else {
    for (let i = 0; i < n; i++) {
      const row = X.subarray(i * dim, (i + 1) * dim);
      for (let a = 0; a < dim; a++) {
        const xa = row[a]!;
        if (xa === 0) continue;
        const base = a * m;
        for (let b = a; b < dim; b++) S[base + b]! += xa * row[b]!;
      }
    }
    for (let a = 0; a < dim; a++) for (let b = a + 1; b < dim; b++) S[b * m + a] = S[a * m + b]!;
  }
  let trace = 0;
  for (let i = 0; i < m; i++) trace += S[i * m + i]!;
  if (!(trace > 0)) return out;

  const bs = Math.min(6, m);
  const rand = mulberry32(0x2545f491);
  const Q = new Float64Array(m * bs);
  for (let i = 0; i < Q.length; i++) Q[i] = rand() - 0.5;
  orthonormalize(Q, m, bs, rand);
  const Z = new Float64Array(m * bs);
  const multiply = (): void => {
    for (let j = 0; j < bs; j++) {
      const q = Q.subarray(j * m, (j + 1) * m);
      for (let r = 0; r < m; r++) {
        const srow = S.subarray(r * m, (r + 1) * m);
        let s = 0;
        for (let c = 0; c < m; c++) s += srow[c]! * q[c]!;
        Z[j * m + r] = s;
      }
    }
  };
  let values: Float64Array = new Float64Array(bs);
  for (let iter = 1; iter <= 1500; iter++) {
    multiply();
    if (iter % 4 !== 0 && iter < 1500) {
      Q.set(Z);
      orthonormalize(Q, m, bs, rand);
      continue;
    }
    // Rayleigh–Ritz: T = Qᵀ S Q, rotate Q onto T's eigenvectors, check the top-2 residuals.
    const T = new Float64Array(bs * bs);
    for (let a = 0; a < bs; a++)
      for (let b = 0; b < bs; b++) {
        let s = 0;
        for (let r = 0; r < m; r++) s += Q[a * m + r]! * Z[b * m + r]!;
        T[a * bs + b] = s;
      }
    for (let a = 0; a < bs; a++) for (let b = a + 1; b < bs; b++) T[a * bs + b] = T[b * bs + a] = (T[a * bs + b]! + T[b * bs + a]!) / 2;
    const eig = jacobiEigen(T, bs);
    values = eig.values;
    const Qr = new Float64Array(m * bs), Zr = new Float64Array(m * bs);
    for (let j = 0; j < bs; j++)
      for (let p = 0; p < bs; p++) {
        const w = eig.vectors[p * bs + j]!;
        if (w === 0) continue;
        for (let r = 0; r < m; r++) {
          Qr[j * m + r]! += w * Q[p * m + r]!;
          Zr[j * m + r]! += w * Z[p * m + r]!;
        }
      }
    let residual = 0;
    for (let j = 0; j < Math.min(2, bs); j++)
      for (let r = 0; r < m; r++) residual = Math.max(residual, Math.abs(Zr[j * m + r]! - values[j]! * Qr[j * m + r]!));
    Q.set(Qr);
    if (residual <= 1e-7 * Math.max(values[0]!, 1e-300)) break;
    Q.set(Zr);
    orthonormalize(Q, m, bs, rand);
  }

  const tol = 1e-12 * trace;
  for (let j = 0; j < Math.min(2, bs); j++) {
    const lambda = values[j]!;
    if (!(lambda > tol)) continue;
    const q = Q.subarray(j * m, (j + 1) * m);
    const coords = new Float64Array(n);
    if (gram) {
      const s = Math.sqrt(lambda);
      for (let i = 0; i < n; i++) coords[i] = q[i]! * s;
    } else {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += X[i * dim + k]! * q[k]!;
        coords[i] = s;
      }
    }
    let big = 0;
    for (let i = 1; i < n; i++) if (Math.abs(coords[i]!) > Math.abs(coords[big]!)) big = i;
    const sign = coords[big]! < 0 ? -1 : 1;
    for (let i = 0; i < n; i++) out[2 * i + j] = sign * coords[i]! + 0;
  }
  return out;
}

// ---------------------------------------------------------------------------
// validation
// ---------------------------------------------------------------------------

function validate(data: ReportData, maxSamples: number): void {
  if (typeof data !== 'object' || data === null) bad('expected an object');
  checkString(data.title, 'title', false);
  if (data.subtitle !== undefined) checkString(data.subtitle, 'subtitle');
  if (data.generatedAt !== undefined && typeof data.generatedAt !== 'string' && !(data.generatedAt instanceof Date && Number.isFinite(data.generatedAt.getTime())))
    bad('generatedAt must be a string or a valid Date');
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

// ---------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--card:#f6f8fa;--border:#d1d9e0;--accent:#0969da;--warn-bg:#fff8c5;--warn-border:#bf8700;--bad:#cf222e}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif}
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.4rem .6rem;z-index:1}
main{max-width:1120px;margin:0 auto;padding:28px 28px 56px}
header.page{border-bottom:1px solid var(--border);padding-bottom:14px;margin-bottom:8px}
h1{font-size:1.85rem;line-height:1.2;margin:0 0 .3rem;letter-spacing:-.01em}
h2{font-size:1.3rem;margin:2.2rem 0 .8rem;padding-bottom:.3rem;border-bottom:1px solid var(--border)}
h3{font-size:1.08rem;margin:0 0 .2rem;display:flex;align-items:center;gap:.5rem;flex-wrap:wrap}
p{margin:.4rem 0}
.sub,.meta,.note,figcaption{color:var(--muted)}
.sub{font-size:1.02rem;margin:0}
.note{font-size:.88rem}
a{color:var(--accent)}
nav.toc ul{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;padding:0;margin:.6rem 0 0;font-size:.92rem}
.warning{border:1px solid var(--warn-border);border-left-width:5px;background:var(--warn-bg);border-radius:6px;padding:.7rem 1rem;margin:1rem 0}
.warning strong{display:block;margin-bottom:.15rem}
.warning ul{margin:.2rem 0 0;padding-left:1.2rem}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:0;padding:0}
.stat{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:10px 14px}
.stat dt{color:var(--muted);font-size:.82rem;text-transform:uppercase;letter-spacing:.04em}
.stat dd{margin:0;font-size:1.55rem;font-weight:600;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.stat dd.text{font-size:1.05rem;font-weight:500}
.stat .hint{display:block;font-size:.8rem;font-weight:400;color:var(--muted)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.3rem 0}
caption{caption-side:bottom;text-align:left;color:var(--muted);font-size:.85rem;padding-top:.5rem}
th,td{padding:6px 12px;border-bottom:1px solid var(--border);text-align:left;vertical-align:middle}
thead th{border-bottom:2px solid var(--fg);font-weight:600}
.num{text-align:right}
tr.best td,td.best{font-weight:700}
tfoot td,tfoot th{border-top:2px solid var(--border);border-bottom:0;font-weight:600}
.scroll{overflow-x:auto}
table.confusion td.cell{text-align:center;min-width:3.4em;border:2px solid #fff}
table.confusion td.cell.zero{color:#9aa4ae}
table.confusion td.cell.match{outline:3px solid var(--fg);outline-offset:-4px;font-weight:700}
table.confusion thead th{text-align:center}
.swatch{display:inline-block;width:.95em;height:.95em;border-radius:50%;border:1px solid rgba(0,0,0,.3);flex:none;vertical-align:-.12em;margin-right:.3em}
.pill{display:inline-block;font-size:.8rem;font-weight:500;padding:.05rem .55rem;border-radius:999px;background:#ddf4ff;color:#0a3069;border:1px solid #b6e3ff}
.pill.warn{background:#fff8c5;color:#6c4a00;border-color:#d4a72c}
figure{margin:0}
figure.chart{background:#fff;border:1px solid var(--border);border-radius:8px;padding:10px 12px;margin:.4rem 0}
figure.chart>svg{display:block;width:100%;height:auto}
figure.chart.small{max-width:560px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1.1rem;padding:0;margin:.5rem 0 0;font-size:.88rem}
.legend li{display:flex;align-items:center;gap:.3rem}
.legend .title{font-weight:600;color:var(--fg)}
.legend svg{display:inline-block;width:14px;height:14px;flex:none}
section.cluster{border:1px solid var(--border);border-radius:10px;padding:14px 16px 16px;margin:0 0 16px}
section.cluster .meta{margin:.1rem 0 .7rem;font-size:.9rem}
ul.crops{list-style:none;display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));gap:10px;padding:0;margin:0}
ul.crops figure{background:var(--card);border:1px solid var(--border);border-radius:6px;padding:5px;text-align:center;height:100%}
ul.crops img{display:block;width:100px;height:100px;margin:0 auto;object-fit:contain;background:#e6eaef;border-radius:3px}
ul.crops figcaption{font-size:.78rem;line-height:1.3;margin-top:4px;overflow-wrap:anywhere}
ul.crops .lab{color:var(--fg);font-weight:500}
ul.crops .mismatch figure{border-color:var(--bad);box-shadow:inset 0 0 0 1px var(--bad)}
ul.crops .mismatch .lab{color:var(--bad)}
.bar{display:inline-block;height:.7em;background:var(--accent);border-radius:2px;vertical-align:middle;min-width:1px}
.track{display:inline-block;width:140px;background:#eaeef2;border-radius:2px;line-height:0;vertical-align:middle;margin-right:.5rem}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
footer{margin-top:2.5rem;border-top:1px solid var(--border);padding-top:.8rem;font-size:.82rem;color:var(--muted)}
@media (max-width:600px){main{padding:16px}}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav.toc,.skip{display:none}
 h2{break-after:avoid}
 figure,tr,section.cluster,.warning,.stat{break-inside:avoid}
 a{color:inherit;text-decoration:none}
}
`;

interface Ctx {
  data: ReportData;
  maxSamples: number;
  colorOf: (cluster: number) => string;
  clusterName: (cluster: number) => string;
  matchOf: Map<number, ClassLabel | null>;
  labelOrder: ClassLabel[];
}

function swatch(color: string): string {
  return `<span class="swatch" style="background:${esc(color)}" aria-hidden="true"></span>`;
}

function markerSvg(shape: number, fill: string): string {
  return `<svg viewBox="-6 -6 12 12" aria-hidden="true" focusable="false"><g fill="${esc(fill)}" stroke="#fff" stroke-width=".6">${MARKERS[shape % MARKERS.length]!}</g></svg>`;
}

function renderWarnings(data: ReportData): string {
  const parts: string[] = [];
  if (data.randomBackbone)
    parts.push(
      `<div class="warning" role="note" id="warn-random-backbone"><strong>⚠ Randomly initialised backbone</strong>` +
        `No pretrained weights were loaded: the embeddings come from a random ViT, so clusters reflect low-level image statistics ` +
        `rather than learned features. Treat the clusters and metrics below as a smoke test, not as results.</div>`,
    );
  if (data.warnings && data.warnings.length > 0)
    parts.push(
      `<div class="warning" role="note"><strong>⚠ Warnings</strong><ul>${data.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`,
    );
  return parts.join('\n');
}

function renderSummary(ctx: Ctx): string {
  const s = ctx.data.summary;
  const kHint = s.kChosenBy === 'fixed' ? 'fixed by the user' : 'estimated from the data';
  const cards: string[] = [
    `<div class="stat"><dt>Images</dt><dd>${fmtInt(s.images)}</dd></div>`,
    `<div class="stat"><dt>Anomaly crops</dt><dd>${fmtInt(s.crops)}</dd></div>`,
    `<div class="stat"><dt>Clusters (K)</dt><dd>${fmtInt(s.k)}<span class="hint">${esc(kHint)}${s.kDetail ? ` — ${esc(s.kDetail)}` : ''}</span></dd></div>`,
  ];
  if (ctx.data.clusters.length !== s.k)
    cards.push(`<div class="stat"><dt>Non-empty clusters</dt><dd>${fmtInt(ctx.data.clusters.length)}</dd></div>`);
  for (const f of s.extra ?? [])
    cards.push(`<div class="stat"><dt>${esc(f.label)}</dt><dd class="text">${esc(typeof f.value === 'number' ? fmtNumber(f.value) : f.value)}</dd></div>`);
  return section('summary', 'Summary', `<dl class="stats">${cards.join('')}</dl>`);
}

function fmtNumber(v: number): string {
  return Number.isInteger(v) ? fmtInt(v) : Number.isFinite(v) ? String(Math.round(v * 1e4) / 1e4) : '—';
}

function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}" aria-labelledby="${esc(id)}-h">\n<h2 id="${esc(id)}-h">${esc(title)}</h2>\n${body}\n</section>`;
}

function renderMetrics(rows: readonly ReportMetrics[]): string {
  const keys = ['nmi', 'ari', 'f1'] as const;
  const best = keys.map((k) => Math.max(...rows.map((r) => (Number.isFinite(r[k]) ? r[k] : -Infinity))));
  const body = rows
    .map(
      (r) =>
        `<tr><th scope="row">${esc(r.method)}</th>${keys
          .map((k, i) => `<td class="num${rows.length > 1 && r[k] === best[i] ? ' best' : ''}">${fmtScore(r[k])}</td>`)
          .join('')}</tr>`,
    )
    .join('');
  return section(
    'metrics',
    'Clustering quality',
    `<div class="scroll"><table class="metrics"><thead><tr><th scope="col">Method</th><th scope="col" class="num">NMI</th><th scope="col" class="num">ARI</th><th scope="col" class="num">F1</th></tr></thead><tbody>${body}</tbody>` +
      `<caption>Against the true labels; higher is better (bold: best). F1 is the accuracy after the optimal (Hungarian) one-to-one matching of clusters to labels.</caption></table></div>`,
  );
}

function heat(t: number): { bg: string; fg: string } {
  // #f7fbff → #08519c
  const lerp = (a: number, b: number): number => Math.round(a + (b - a) * t);
  const bg = `rgb(${lerp(247, 8)},${lerp(251, 81)},${lerp(255, 156)})`;
  return { bg, fg: t > 0.5 ? '#fff' : '#1f2328' };
}

function renderConfusion(ctx: Ctx, cm: ReportConfusion): string {
  const unit = cm.unit ?? 'images';
  let max = 0;
  for (const row of cm.counts) for (const v of row) max = Math.max(max, v);
  const colTotals = cm.labels.map((_, c) => cm.counts.reduce((s, row) => s + row[c]!, 0));
  const total = colTotals.reduce((a, b) => a + b, 0);
  const head = `<thead><tr><th scope="col">Cluster ↓ · true label →</th>${cm.labels.map((l) => `<th scope="col">${esc(l)}</th>`).join('')}<th scope="col" class="num">Total</th></tr></thead>`;
  const body = cm.clusters
    .map((cluster, r) => {
      const row = cm.counts[r]!;
      const matched = ctx.matchOf.get(cluster);
      const cells = row
        .map((v, c) => {
          const label = cm.labels[c]!;
          const isMatch = matched !== undefined && matched !== null && matched === label;
          const { bg, fg } = heat(max > 0 ? v / max : 0);
          const cls = `cell${v === 0 ? ' zero' : ''}${isMatch ? ' match' : ''}`;
          return `<td class="${cls}" data-count="${esc(v)}" style="background:${bg};color:${fg}">${esc(fmtNumber(v))}${isMatch ? '<span class="vh"> (matched)</span>' : ''}</td>`;
        })
        .join('');
      const rowTotal = row.reduce((a, b) => a + b, 0);
      const note = matched === null ? ' <span class="note">(unmatched)</span>' : '';
      return `<tr><th scope="row">${swatch(ctx.colorOf(cluster))}${esc(ctx.clusterName(cluster))}${note}</th>${cells}<td class="num">${esc(fmtNumber(rowTotal))}</td></tr>`;
    })
    .join('');
  const foot = `<tfoot><tr><th scope="row">Total</th>${colTotals.map((v) => `<td class="num">${esc(fmtNumber(v))}</td>`).join('')}<td class="num" data-total="${esc(total)}">${esc(fmtNumber(total))}</td></tr></tfoot>`;
  const mappingNote = cm.mapping ? ' Outlined cells: the Hungarian matching of clusters to labels used for F1.' : '';
  return section(
    'confusion',
    'Clusters vs. true labels',
    `<div class="scroll"><table class="confusion">${head}<tbody>${body}</tbody>${foot}<caption>Number of ${esc(unit)} per discovered cluster (rows) and true label (columns); darker = more.${mappingNote}</caption></table></div>`,
  );
}

function renderEmbedding(ctx: Ctx, emb: ReportEmbedding): string {
  const W = 720, H = 420, pad = 20;
  const pts = emb.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const skipped = emb.points.length - pts.length;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const p of pts) {
    x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x);
    y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
  }
  const rx = x1 - x0 || 1, ry = y1 - y0 || 1;
  const scale = Math.min((W - 2 * pad) / rx, (H - 2 * pad) / ry); // equal aspect: distances are honest
  const ox = (W - rx * scale) / 2 - x0 * scale;
  const oy = (H - ry * scale) / 2 + y1 * scale; // y up
  const hasLabels = pts.some((p) => p.label !== undefined);
  const labels = hasLabels ? ctx.labelOrder.filter((l) => pts.some((p) => p.label === l)) : [];
  const shapeOf = new Map<ClassLabel, number>(labels.map((l, i) => [l, i]));
  const usedShapes = hasLabels ? Math.min(MARKERS.length, labels.length + (pts.some((p) => p.label === undefined) ? 1 : 0)) : 1;
  const defs = MARKERS.slice(0, Math.max(usedShapes, 1)).map((m, i) => `<g id="mk${i}" transform="scale(1.3)">${m}</g>`).join('');
  const withTitles = pts.length <= 4000;
  // Draw larger clusters first so that small ones stay visible.
  const size = new Map<number, number>();
  for (const p of pts) size.set(p.cluster, (size.get(p.cluster) ?? 0) + 1);
  const order = pts.map((_, i) => i).sort((a, b) => size.get(pts[b]!.cluster)! - size.get(pts[a]!.cluster)! || a - b);
  const marks = order
    .map((i) => {
      const p = pts[i]!;
      const shape = hasLabels ? (p.label === undefined ? labels.length : shapeOf.get(p.label)!) % MARKERS.length : 0;
      const title = withTitles ? `<title>${esc(ctx.clusterName(p.cluster))}${p.label !== undefined ? ` · true label ${esc(p.label)}` : ''}</title>` : '';
      return `<use href="#mk${shape}" x="${num(ox + p.x * scale)}" y="${num(oy - p.y * scale)}" fill="${esc(ctx.colorOf(p.cluster))}">${title}</use>`;
    })
    .join('');
  const clusters = [...new Set(pts.map((p) => p.cluster))].sort((a, b) => a - b);
  const method = emb.method ?? 'PCA';
  const desc = `Scatter plot of ${pts.length} crops in 2-D (${method}), coloured by cluster${hasLabels ? ', marker shape by true label' : ''}.`;
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="emb-t emb-d">` +
    `<title id="emb-t">Embedding of the crops</title><desc id="emb-d">${esc(desc)}</desc>` +
    `<defs>${defs}</defs><rect x=".5" y=".5" width="${W - 1}" height="${H - 1}" fill="#fbfcfd" stroke="#e1e6eb" rx="6"/>` +
    `<g stroke="#fff" stroke-width=".7" fill-opacity=".92">${marks}</g></svg>`;
  const legend =
    `<ul class="legend" aria-label="Cluster colours"><li class="title">Cluster</li>${clusters
      .map((c) => `<li>${swatch(ctx.colorOf(c))}${esc(ctx.clusterName(c))}</li>`)
      .join('')}</ul>` +
    (hasLabels
      ? `<ul class="legend" aria-label="True-label shapes"><li class="title">True label</li>${labels
          .map((l, i) => `<li>${markerSvg(i, '#57606a')}${esc(l)}</li>`)
          .join('')}${pts.some((p) => p.label === undefined) ? `<li>${markerSvg(labels.length, '#57606a')}unknown</li>` : ''}</ul>`
      : '');
  const extra = skipped > 0 ? ` ${skipped} point(s) with non-finite coordinates are not shown.` : '';
  return section(
    'embedding',
    'Embedding',
    `<figure class="chart">${svg}${legend}<figcaption class="note">${esc(desc)} Nearby crops have similar features; axes are arbitrary.${esc(extra)}</figcaption></figure>`,
  );
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

function renderKCurve(ctx: Ctx, kc: ReportKCurve): string {
  const pts = [...kc.curve].sort((a, b) => a.k - b.k);
  const finite = pts.filter((p) => Number.isFinite(p.score));
  const scoreName = kc.scoreName ?? 'mean silhouette';
  const chosen = kc.chosen ?? (pts.some((p) => p.k === ctx.data.summary.k) ? ctx.data.summary.k : undefined);
  const W = 520, H = 260, ml = 66, mr = 18, mt = 16, mb = 44;
  const kMin = pts.length ? pts[0]!.k : 0, kMax = pts.length ? pts[pts.length - 1]!.k : 1;
  let sMin = Math.min(...finite.map((p) => p.score)), sMax = Math.max(...finite.map((p) => p.score));
  if (!finite.length) { sMin = 0; sMax = 1; }
  if (sMax - sMin < 1e-9) { sMin -= 0.05; sMax += 0.05; }
  const step = niceStep(sMax - sMin, 4);
  const lo = Math.floor(sMin / step) * step, hi = Math.ceil(sMax / step) * step;
  const X = (k: number): number => ml + (kMax === kMin ? (W - ml - mr) / 2 : ((k - kMin) / (kMax - kMin)) * (W - ml - mr));
  const Y = (s: number): number => mt + (1 - (s - lo) / (hi - lo || 1)) * (H - mt - mb);
  const grid: string[] = [];
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let v = lo, i = 0; v <= hi + step / 2 && i < 20; v += step, i++) {
    const y = num(Y(v));
    grid.push(`<line x1="${ml}" x2="${W - mr}" y1="${y}" y2="${y}" stroke="#e6eaef"/><text x="${ml - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(v.toFixed(Math.min(digits + 1, 4)))}</text>`);
  }
  const kStep = Math.max(1, Math.ceil((kMax - kMin + 1) / 14));
  for (let k = kMin; k <= kMax; k += kStep) grid.push(`<text x="${num(X(k))}" y="${H - mb + 18}" text-anchor="middle">${k}</text>`);
  const path = finite.map((p, i) => `${i ? 'L' : 'M'}${num(X(p.k))} ${num(Y(p.score))}`).join('');
  const chosenPt = finite.find((p) => p.k === chosen);
  const dots = finite
    .map((p) => `<circle cx="${num(X(p.k))}" cy="${num(Y(p.score))}" r="${p === chosenPt ? 6 : 3.5}" fill="${p === chosenPt ? '#cf222e' : '#0969da'}" stroke="#fff" stroke-width="1.5"><title>K = ${p.k}: ${esc(fmtScore(p.score))}</title></circle>`)
    .join('');
  const chosenMark = chosenPt
    ? `<line x1="${num(X(chosenPt.k))}" x2="${num(X(chosenPt.k))}" y1="${mt}" y2="${H - mb}" stroke="#cf222e" stroke-dasharray="4 3"/>` +
      `<text x="${num(X(chosenPt.k) + (X(chosenPt.k) > W - 110 ? -6 : 6))}" y="${mt + 12}" text-anchor="${X(chosenPt.k) > W - 110 ? 'end' : 'start'}" fill="#cf222e" font-weight="600">chosen K = ${chosenPt.k}</text>`
    : '';
  const desc = `Line chart of ${scoreName} against the number of clusters K for K = ${kMin}…${kMax}${chosen !== undefined ? `; chosen K = ${chosen}` : ''}.`;
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="kc-t kc-d" font-size="12" fill="#59636e">` +
    `<title id="kc-t">K estimation</title><desc id="kc-d">${esc(desc)}</desc>${grid.join('')}` +
    `<line x1="${ml}" x2="${W - mr}" y1="${H - mb}" y2="${H - mb}" stroke="#8c959f"/>` +
    `<text x="${(ml + W - mr) / 2}" y="${H - 6}" text-anchor="middle" fill="#1f2328">number of clusters K</text>` +
    `<text transform="translate(14 ${(mt + H - mb) / 2}) rotate(-90)" text-anchor="middle" fill="#1f2328">${esc(scoreName)}</text>` +
    `${chosenMark}<path d="${path}" fill="none" stroke="#0969da" stroke-width="2" stroke-linejoin="round"/>${dots}</svg>`;
  const rows = pts.map((p) => `<tr${p.k === chosen ? ' class="best"' : ''}><td class="num">${p.k}</td><td class="num">${esc(fmtScore(p.score))}</td></tr>`).join('');
  return section(
    'k-estimation',
    'Choice of K',
    `<figure class="chart small">${svg}<figcaption class="note">${esc(desc)}</figcaption></figure>` +
      `<details><summary>Values</summary><table><thead><tr><th scope="col" class="num">K</th><th scope="col" class="num">${esc(scoreName)}</th></tr></thead><tbody>${rows}</tbody></table></details>`,
  );
}

function renderCluster(ctx: Ctx, c: ReportCluster, composition: Map<number, { label: ClassLabel; count: number }[]>): string {
  const matched = ctx.matchOf.get(c.id);
  const id = `cluster-${c.id}`;
  const heading =
    `${swatch(ctx.colorOf(c.id))}<span>${esc(ctx.clusterName(c.id))}</span>` +
    (matched !== undefined && matched !== null ? `<span class="pill" title="Hungarian match">matched: ${esc(matched)}</span>` : '') +
    (matched === null ? '<span class="pill warn">unmatched</span>' : '');
  const comp = composition.get(c.id);
  let compText = '';
  if (comp && comp.length) {
    const total = comp.reduce((s, x) => s + x.count, 0);
    const top = [...comp].sort((a, b) => b.count - a.count || compareLabels(a.label, b.label)).filter((x) => x.count > 0).slice(0, 4);
    compText = ` · true labels: ${top.map((x) => `${esc(x.label)} ${esc(fmtNumber(x.count))}`).join(', ')}${total > 0 && top.length < comp.filter((x) => x.count > 0).length ? ', …' : ''}`;
  }
  const shown = c.samples.slice(0, ctx.maxSamples);
  const items = shown
    .map((s, i) => {
      const mismatch = s.label !== undefined && matched !== undefined && matched !== null && s.label !== matched;
      const alt = `Crop ${i + 1} of ${ctx.clusterName(c.id)}${s.label !== undefined ? `, true label ${s.label}` : ''}${s.caption ? `, ${s.caption}` : ''}`;
      const cap = [
        s.label !== undefined ? `<span class="lab">${mismatch ? '✗ ' : ''}${esc(s.label)}</span>${mismatch ? '<span class="vh"> (differs from the matched label)</span>' : ''}` : '',
        s.caption ? `<span>${esc(s.caption)}</span>` : '',
      ].filter(Boolean).join('<br>');
      return `<li${mismatch ? ' class="mismatch"' : ''}><figure><img src="${s.src}" alt="${esc(alt)}" width="100" height="100" loading="eager">${cap ? `<figcaption>${cap}</figcaption>` : ''}</figure></li>`;
    })
    .join('');
  const more =
    c.samples.length > shown.length || c.regions > shown.length
      ? `<p class="note">Showing ${shown.length} of ${fmtInt(Math.max(c.regions, c.samples.length))} crops.</p>`
      : '';
  const gallery = shown.length ? `<ul class="crops">${items}</ul>${more}` : '<p class="note">No sample crops.</p>';
  return (
    `<section class="cluster" id="${esc(id)}" aria-labelledby="${esc(id)}-h">` +
    `<h3 id="${esc(id)}-h">${heading}</h3>` +
    `<p class="meta">${fmtInt(c.images)} image${c.images === 1 ? '' : 's'} · ${fmtInt(c.regions)} region${c.regions === 1 ? '' : 's'}${compText}</p>` +
    `${gallery}</section>`
  );
}

function renderTimings(timings: readonly StageTiming[]): string {
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const max = Math.max(0, ...timings.map((t) => t.ms));
  const rows = timings
    .map((t) => {
      const share = total > 0 ? (100 * t.ms) / total : 0;
      const w = max > 0 ? (100 * t.ms) / max : 0;
      return `<tr><th scope="row">${esc(t.stage)}</th><td class="num">${msFormat.format(t.ms)}</td><td><span class="track" aria-hidden="true"><span class="bar" style="width:${num(w)}%"></span></span>${share.toFixed(1)}%</td></tr>`;
    })
    .join('');
  return section(
    'timings',
    'Timings',
    `<div class="scroll"><table class="timings"><thead><tr><th scope="col">Stage</th><th scope="col" class="num">Time (ms)</th><th scope="col">Share</th></tr></thead><tbody>${rows}</tbody>` +
      `<tfoot><tr><th scope="row">Total</th><td class="num">${msFormat.format(total)}</td><td>100%</td></tr></tfoot><caption>Wall time per pipeline stage.</caption></table></div>`,
  );
}

/**
 * Renders the report as one self-contained HTML5 document (UTF-8). The output
 * depends only on `data` and `options`.
 * @throws {@link InvalidArgumentError} when `data` is malformed (the message names the field).
 */
export function renderReport(data: ReportData, options: RenderReportOptions = {}): string {
  const maxSamples = options.maxSamplesPerCluster ?? 12;
  if (!Number.isInteger(maxSamples) || maxSamples < 0 || maxSamples > 1000)
    throw new InvalidArgumentError(`maxSamplesPerCluster must be an integer in 0..1000, got ${String(maxSamples)}`);
  validate(data, maxSamples);

  // Stable colours: rank of the id among every cluster id mentioned anywhere.
  const allIds = new Set<number>(data.clusters.map((c) => c.id));
  for (const p of data.embedding?.points ?? []) allIds.add(p.cluster);
  for (const c of data.confusion?.clusters ?? []) allIds.add(c);
  const ranked = [...allIds].filter((c) => c >= 0).sort((a, b) => a - b);
  const rank = new Map(ranked.map((c, i) => [c, i]));
  const names = new Map(data.clusters.map((c) => [c.id, c.name]));
  const matchOf = new Map<number, ClassLabel | null>();
  for (const m of data.confusion?.mapping ?? []) matchOf.set(m.cluster, m.label);
  const labelSet = new Set<ClassLabel>(data.confusion?.labels ?? []);
  for (const p of data.embedding?.points ?? []) if (p.label !== undefined) labelSet.add(p.label);
  const ctx: Ctx = {
    data,
    maxSamples,
    colorOf: (c) => (c < 0 ? UNASSIGNED : clusterColor(rank.get(c) ?? 0)),
    clusterName: (c) => {
      const name = names.get(c);
      return c < 0 ? `Unassigned${name ? ` (${name})` : ''}` : `Cluster ${c}${name ? ` — ${name}` : ''}`;
    },
    matchOf,
    labelOrder: [...labelSet].sort(compareLabels),
  };
  const composition = new Map<number, { label: ClassLabel; count: number }[]>();
  if (data.confusion)
    data.confusion.clusters.forEach((c, r) =>
      composition.set(c, data.confusion!.labels.map((label, j) => ({ label, count: data.confusion!.counts[r]![j]! }))),
    );

  const sections: { id: string; title: string; html: string }[] = [];
  sections.push({ id: 'summary', title: 'Summary', html: renderSummary(ctx) });
  if (data.metrics && data.metrics.length) sections.push({ id: 'metrics', title: 'Quality', html: renderMetrics(data.metrics) });
  if (data.confusion) sections.push({ id: 'confusion', title: 'Clusters vs. labels', html: renderConfusion(ctx, data.confusion) });
  if (data.embedding) sections.push({ id: 'embedding', title: 'Embedding', html: renderEmbedding(ctx, data.embedding) });
  if (data.kCurve && data.kCurve.curve.length) sections.push({ id: 'k-estimation', title: 'Choice of K', html: renderKCurve(ctx, data.kCurve) });
  sections.push({
    id: 'clusters',
    title: 'Clusters',
    html: section(
      'clusters',
      `Discovered clusters (${data.clusters.length})`,
      data.clusters.length ? data.clusters.map((c) => renderCluster(ctx, c, composition)).join('\n') : '<p class="note">No clusters.</p>',
    ),
  });
  if (data.timings && data.timings.length) sections.push({ id: 'timings', title: 'Timings', html: renderTimings(data.timings) });

  const generated =
    data.generatedAt === undefined ? '' : data.generatedAt instanceof Date ? data.generatedAt.toISOString() : data.generatedAt;
  const csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="generator" content="anomalyncd">
<title>${esc(data.title)}</title>
<style>${CSS}</style>
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
<main id="content">
<header class="page">
<h1>${esc(data.title)}</h1>
${data.subtitle ? `<p class="sub">${esc(data.subtitle)}</p>` : ''}
${generated ? `<p class="note">Generated ${esc(generated)}</p>` : ''}
<nav class="toc" aria-label="Sections"><ul>${sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.title)}</a></li>`).join('')}</ul></nav>
</header>
${renderWarnings(data)}
${sections.map((s) => s.html).join('\n')}
<footer>AnomalyNCD novel anomaly-class discovery report, produced by anomalyncd. Self-contained: it loads nothing from the network.</footer>
</main>
</body>
</html>
`;
}

/** Renders the report and writes it atomically to `path` (parent folders are created). */
export async function writeReport(path: string, data: ReportData, options: RenderReportOptions = {}): Promise<void> {
  await writeFileAtomic(path, renderReport(data, options));
}
