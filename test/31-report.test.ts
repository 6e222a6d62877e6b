// The HTML report (ts/report/) and the PNG encoder (ts/io/png.ts): structure,
// escaping, self-containedness, validation, and rendering in headless
// Chromium without console errors.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import {
  DEFECT_TYPES,
  InvalidArgumentError,
  Tensor,
  buildReportData,
  estimateK,
  evaluate,
  generateSynthetic,
  kmeans,
  renderReport,
  writeReport,
  type ClassLabel,
  type DiscoverResult,
  type ReportCluster,
  type ReportData,
  type ReportSample,
} from 'anomalyncd';
import { pca2d } from '../ts/analysis/pca.js';
import { encodePng, encodeTensorPng, pngDataUrl } from '../ts/io/png.js';
import { confusionMatrix } from '../ts/report/data.js';
import { escapeHtml } from '../ts/report/html.js';
import { prng, python, tempDir } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = '<script>alert("x")</script>';
const TITLE = 'AnomalyNCD report — synthetic surfaces';

// ---------------------------------------------------------------------------
// a minimal PNG decoder (8-bit gray/RGB, all five filters) to check the encoder
// ---------------------------------------------------------------------------

function decodePng(png: Buffer): { width: number; height: number; colorType: number; bitDepth: number; pixels: Uint8Array } {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG');
  let at = 8, width = 0, height = 0, colorType = 0, bitDepth = 0;
  const idat: Buffer[] = [];
  for (;;) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    at += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      bitDepth = data[8]!;
      colorType = data[9]!;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  const bpp = (colorType === 2 ? 3 : 1) * (bitDepth / 8);
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= bpp ? out[y * stride + i - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >>> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new Error(`bad filter ${f}`);
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, colorType, bitDepth, pixels: out };
}

// ---------------------------------------------------------------------------
// png.ts
// ---------------------------------------------------------------------------

test('encodePng round-trips gray/RGB 8-bit through a decoder and through PIL, 16-bit through PIL', (t) => {
  const rand = prng(7);
  const dir = tempDir();
  // Smooth gradients + noise so that every filter type gets chosen somewhere.
  const w = 41, h = 29;
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) rgb[(y * w + x) * 3 + c] = y < 10 ? (x * 6 + c * 40) & 255 : y < 20 ? (y * 8 + x) & 255 : Math.floor(rand() * 256);
  const png = encodePng(w, h, rgb, 2);
  const dec = decodePng(png);
  t.deepEqual([dec.width, dec.height, dec.colorType, dec.bitDepth], [w, h, 2, 8]);
  t.deepEqual(dec.pixels, rgb);
  const gray = Array.from({ length: w * h }, (_, i) => (i * 37) % 256);
  t.deepEqual(Array.from(decodePng(encodePng(w, h, gray)).pixels), gray);
  const deep = Array.from({ length: w * h }, () => Math.floor(rand() * 65536));
  writeFileSync(join(dir, 'rgb.png'), png);
  writeFileSync(join(dir, 'deep.png'), encodePng(w, h, deep, 0, 16));
  const out = JSON.parse(
    python(
      'import sys, json, numpy as np\nfrom PIL import Image\n' +
        'a = np.array(Image.open(sys.argv[1])); b = np.array(Image.open(sys.argv[2]))\n' +
        'print(json.dumps({"rgb": a.reshape(-1).tolist(), "shape": list(a.shape), "deep": b.reshape(-1).astype(int).tolist()}))',
      [join(dir, 'rgb.png'), join(dir, 'deep.png')],
    ),
  ) as { rgb: number[]; shape: number[]; deep: number[] };
  t.deepEqual(out.shape, [h, w, 3]);
  t.deepEqual(out.rgb, Array.from(rgb));
  t.deepEqual(out.deep, deep);
});

test('encodePng rejects bad sizes, sample counts and values', (t) => {
  t.throws(() => encodePng(0, 4, []), { instanceOf: InvalidArgumentError });
  t.throws(() => encodePng(2, 2, [1, 2, 3]), { instanceOf: InvalidArgumentError });
  t.throws(() => encodePng(1, 1, [256]), { instanceOf: InvalidArgumentError });
  t.throws(() => encodePng(1, 1, [1.5]), { instanceOf: InvalidArgumentError });
  t.throws(() => encodePng(1, 1, [70000], 0, 16), { instanceOf: InvalidArgumentError });
  t.throws(() => encodePng(1, 1, [1], 4 as 0), { instanceOf: InvalidArgumentError });
  t.notThrows(() => encodePng(1, 1, [65535], 0, 16));
});

test('pngDataUrl box-downsamples to maxSide and keeps small images as they are', (t) => {
  // 4×6 RGB; columns pairs average exactly.
  const h = 4, w = 6;
  const data = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = x * 10 + y * 40 + c;
  const img = new Tensor('uint8', [h, w, 3], data);
  const url = pngDataUrl(img, 3);
  t.true(url.startsWith('data:image/png;base64,'));
  const dec = decodePng(Buffer.from(url.slice('data:image/png;base64,'.length), 'base64'));
  t.deepEqual([dec.width, dec.height, dec.colorType], [3, 2, 2]);
  // Output (0,0) averages rows 0-1, columns 0-1: 10x in {0,10}, 40y in {0,40} → 25 (+c).
  t.deepEqual(Array.from(dec.pixels.subarray(0, 3)), [25, 26, 27]);
  // Output (row 1, col 2) averages rows 2-3, columns 4-5: 45 + 100 = 145 (+c).
  t.deepEqual(Array.from(dec.pixels.subarray(15, 18)), [145, 146, 147]);
  const big = decodePng(encodeTensorPng(img));
  t.deepEqual([big.width, big.height], [w, h]);
  t.deepEqual(big.pixels, data);
  const gray = new Tensor('uint8', [5, 3], new Uint8Array(15).fill(9));
  const g = decodePng(encodeTensorPng(gray, 128));
  t.deepEqual([g.width, g.height, g.colorType], [3, 5, 0]);
  t.throws(() => pngDataUrl(new Tensor('uint8', [2, 2, 2]), 8), { instanceOf: InvalidArgumentError });
  t.throws(() => pngDataUrl(new Tensor('uint8', [0, 2, 3]), 8), { instanceOf: InvalidArgumentError });
  t.throws(() => pngDataUrl(new Tensor('float32', [2, 2]) as unknown as Tensor<'uint8'>, 8), { instanceOf: InvalidArgumentError });
});

// ---------------------------------------------------------------------------
// pca2d
// ---------------------------------------------------------------------------

test('pca2d recovers a rank-2 layout exactly, matches NumPy SVD, and is deterministic', (t) => {
  const rand = prng(11);
  // Rank-2 data in 7-D: pairwise distances must be preserved exactly.
  const n = 40, dim = 7;
  const basis = [Array.from({ length: dim }, () => rand() - 0.5), Array.from({ length: dim }, () => rand() - 0.5)];
  const f = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    const a = 3 * (rand() - 0.5), b = rand() - 0.5;
    for (let k = 0; k < dim; k++) f[i * dim + k] = 5 + a * basis[0]![k]! + b * basis[1]![k]!;
  }
  const xy = pca2d(f, n, dim);
  t.is(xy.length, 2 * n);
  let worst = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let d2 = 0;
      for (let k = 0; k < dim; k++) d2 += (f[i * dim + k]! - f[j * dim + k]!) ** 2;
      const e2 = (xy[2 * i]! - xy[2 * j]!) ** 2 + (xy[2 * i + 1]! - xy[2 * j + 1]!) ** 2;
      worst = Math.max(worst, Math.abs(Math.sqrt(d2) - Math.sqrt(e2)));
    }
  t.true(worst < 1e-4, `distance error ${worst}`);
  t.deepEqual(pca2d(f, n, dim), xy);

  // Random data, both the covariance (n > dim) and the Gram (n ≤ dim) routes, against NumPy.
  const dir = tempDir();
  for (const [m, d] of [[60, 9], [8, 50]] as const) {
    const g = new Float32Array(m * d);
    for (let i = 0; i < g.length; i++) g[i] = (rand() - 0.5) * (1 + (i % d) * 0.3);
    writeFileSync(join(dir, 'g.bin'), g);
    const ref = JSON.parse(
      python(
        'import sys, json, numpy as np\n' +
          `X = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64).reshape(${m}, ${d})\n` +
          'Xc = X - X.mean(0); U, S, Vt = np.linalg.svd(Xc, full_matrices=False); R = Xc @ Vt[:2].T\n' +
          'for j in range(2):\n    R[:, j] *= 1 if R[np.argmax(np.abs(R[:, j])), j] >= 0 else -1\n' +
          'print(json.dumps(R.reshape(-1).tolist()))',
        [join(dir, 'g.bin')],
      ),
    ) as number[];
    const got = pca2d(g, m, d);
    const err = Math.max(...ref.map((v, i) => Math.abs(v - got[i]!)));
    t.true(err < 1e-4, `${m}×${d}: max error ${err}`);
  }
  // Degenerate inputs.
  t.deepEqual(Array.from(pca2d(new Float32Array(3), 1, 3)), [0, 0]);
  t.deepEqual(Array.from(pca2d(new Float32Array(12).fill(2), 4, 3)), new Array(8).fill(0));
  t.throws(() => pca2d(new Float32Array(5), 2, 3), { instanceOf: InvalidArgumentError });
  t.throws(() => pca2d(Float32Array.of(1, Number.NaN), 2, 1), { instanceOf: InvalidArgumentError });
});

// ---------------------------------------------------------------------------
// a realistic report
// ---------------------------------------------------------------------------

interface Fixture {
  data: ReportData;
  nImages: number;
  clusterIds: number[];
  shownPerCluster: Map<number, number>;
}

function cropTensor(image: Tensor<'uint8'>, x0: number, y0: number, x1: number, y1: number): Tensor<'uint8'> {
  const W = image.shape[1]!;
  const w = x1 - x0, h = y1 - y0;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(image.data.subarray(((y0 + y) * W + x0) * 3, ((y0 + y) * W + x1) * 3), y * w * 3);
  return new Tensor('uint8', [h, w, 3], out);
}

function buildFixture(): Fixture {
  const samples = generateSynthetic({ perType: 8, good: 0, size: 128, mapSize: 64, seed: 3 });
  const nImages = samples.length;
  // Truth per image; one label is hostile HTML.
  const truth: ClassLabel[] = samples.map((s, i) => (i === 9 ? HOSTILE : s.label));
  // Two crops per image (tight and loose box around the defect); hand-made features per crop.
  const crops: { image: number; src: string; feat: number[] }[] = [];
  samples.forEach((s, i) => {
    const size = s.image.shape[0]!;
    let x0 = size, y0 = size, x1 = 0, y1 = 0, area = 0, inside = 0;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        if (s.mask.data[y * size + x]) {
          x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
          area++;
          inside += s.image.data[(y * size + x) * 3]!;
        }
    for (const margin of [2, 10]) {
      const box = [Math.max(0, x0 - margin), Math.max(0, y0 - margin), Math.min(size, x1 + margin), Math.min(size, y1 + margin)] as const;
      const crop = cropTensor(s.image, ...box);
      const bw = x1 - x0, bh = y1 - y0;
      crops.push({
        image: i,
        src: pngDataUrl(crop, 96),
        feat: [Math.log1p(area), Math.log(Math.max(bw, bh) / Math.max(1, Math.min(bw, bh))), area / (bw * bh), inside / area / 255, margin / 20],
      });
    }
  });
  const dim = 5;
  const features = new Float32Array(crops.length * dim);
  crops.forEach((c, i) => features.set(c.feat, i * dim));

  // "AnomalyNCD" image predictions: cluster ids permuted w.r.t. DEFECT_TYPES, two deliberate mistakes.
  const idOf = new Map<string, number>(DEFECT_TYPES.map((l, i) => [l, [3, 0, 1, 2][i]!]));
  const pred = samples.map((s) => idOf.get(s.label)!);
  pred[2] = idOf.get('crack')!;
  pred[20] = idOf.get('scratch')!;
  const ours = evaluate(truth, pred);
  // Baseline: k-means on the per-image features (first crop).
  const imgFeat = new Float32Array(nImages * dim);
  for (let i = 0; i < nImages; i++) imgFeat.set(crops[2 * i]!.feat, i * dim);
  const base = kmeans(imgFeat, nImages, dim, 4, { seed: 0, nInit: 3 });
  const baseline = evaluate(truth, Array.from(base.labels));
  const kEst = estimateK(features, crops.length, dim, { kMin: 2, kMax: 7, seed: 0, nInit: 3 });

  const xy = pca2d(features, crops.length, dim);
  const clusterIds = [...new Set(pred)].sort((a, b) => a - b);
  const clusters: ReportCluster[] = clusterIds.map((id) => {
    const imgs = pred.flatMap((p, i) => (p === id ? [i] : []));
    const sampleList: ReportSample[] = crops
      .filter((c) => pred[c.image] === id)
      .map((c) => ({ src: c.src, label: truth[c.image]!, caption: samples[c.image]!.name }));
    const cl: ReportCluster = { id, images: imgs.length, regions: sampleList.length, samples: sampleList };
    if (id === 0) cl.name = 'thin & "long"';
    return cl;
  });
  const shownPerCluster = new Map(clusters.map((c) => [c.id, Math.min(12, c.samples.length)]));
  const data: ReportData = {
    title: TITLE,
    subtitle: `generateSynthetic(seed 3): ${nImages} images, ${crops.length} crops`,
    generatedAt: new Date(Date.UTC(2025, 5, 1, 12, 0, 0)),
    randomBackbone: true,
    warnings: ['Only 32 images: metrics are noisy.', `A label contains markup: ${HOSTILE}`],
    summary: {
      images: nImages,
      crops: crops.length,
      k: 4,
      kChosenBy: 'estimated',
      kDetail: 'max mean silhouette over K = 2…7',
      extra: [
        { label: 'Backbone', value: 'ViT-S/16 (random)' },
        { label: 'Epochs', value: 3 },
      ],
    },
    clusters,
    embedding: { method: 'PCA', points: crops.map((c, i) => ({ x: xy[2 * i]!, y: xy[2 * i + 1]!, cluster: pred[c.image]!, label: truth[c.image]! })) },
    confusion: confusionMatrix(pred, truth, ours.mapping),
    metrics: [
      { method: 'AnomalyNCD', nmi: ours.nmi, ari: ours.ari, f1: ours.f1 },
      { method: 'k-means baseline', nmi: baseline.nmi, ari: baseline.ari, f1: baseline.f1 },
    ],
    kCurve: { curve: kEst.curve, chosen: 4 },
    timings: [
      { stage: 'MEBin', ms: 412.3 },
      { stage: 'crops', ms: 95.1 },
      { stage: 'training', ms: 18234.9 },
      { stage: 'clustering', ms: 77 },
      { stage: 'report', ms: 12.5 },
    ],
  };
  return { data, nImages, clusterIds, shownPerCluster };
}

const fixture = buildFixture();

function assertNoExternal(t: { false: (v: boolean, m?: string) => void; regex: (s: string, r: RegExp) => void; notRegex: (s: string, r: RegExp, m?: string) => void }, html: string): void {
  t.notRegex(html, /https?:\/\//i, 'no http(s) references');
  t.notRegex(html, /<script\b/i, 'no script elements at all');
  t.notRegex(html, /<(?:link|iframe|object|embed|base)\b/i, 'no external-loading elements');
  t.notRegex(html, /url\(/i, 'no CSS url()');
  t.notRegex(html, /\s(?:src|href)="(?!data:image\/|#)/i, 'only data: images and in-page links');
  t.notRegex(html, /\son[a-z]+=/i, 'no inline event handlers');
}

test('renderReport: structure, escaping, confusion sums, self-containedness', (t) => {
  const { data, nImages, clusterIds, shownPerCluster } = fixture;
  const html = renderReport(data);
  t.true(html.startsWith('<!DOCTYPE html>'));
  t.true(html.includes(`<title>${escapeHtml(TITLE)}</title>`));
  assertNoExternal(t, html);
  t.notRegex(html, /<script src/i);

  // One section per cluster, with its id, heading and at most 12 sample crops.
  for (const id of clusterIds) {
    const start = html.indexOf(`<section class="cluster" id="cluster-${id}"`);
    t.true(start >= 0, `cluster ${id} section`);
    t.is(html.split(`id="cluster-${id}"`).length, 2, `cluster ${id} section is unique`);
    const body = html.slice(start, html.indexOf('</section>', start));
    t.true(body.includes(`Cluster ${id}`));
    t.is((body.match(/<img /g) ?? []).length, shownPerCluster.get(id)!);
  }
  t.is((html.match(/<section class="cluster"/g) ?? []).length, clusterIds.length);
  // 16 crops per cluster (8 images × 2) in most clusters: "Showing 12 of …".
  t.regex(html, /Showing 12 of 16 crops/);

  // Confusion matrix: the cells sum to the number of images, one cell per (cluster, label).
  const confusion = html.slice(html.indexOf('<table class="confusion">'), html.indexOf('</table>', html.indexOf('<table class="confusion">')));
  const cells = [...confusion.matchAll(/data-count="(\d+)"/g)].map((m) => Number(m[1]));
  t.is(cells.length, clusterIds.length * 5);
  t.is(cells.reduce((a, b) => a + b, 0), nImages);
  t.regex(confusion, new RegExp(`data-total="${nImages}"`));
  // The Hungarian matching: 4 clusters matched to 4 of the 5 labels, outlined.
  t.is((confusion.match(/class="cell[^"]*\bmatch\b/g) ?? []).length, data.confusion!.mapping!.filter((m) => m.label !== null).length);
  t.is((confusion.match(/class="cell[^"]*\bmatch\b/g) ?? []).length, 4);

  // Escaping: the hostile label, the cluster name, the warning.
  t.false(html.includes(HOSTILE));
  t.true(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  t.true(html.includes('thin &amp; &quot;long&quot;'));
  t.false(html.includes('thin & "long"'));

  // Other sections.
  for (const id of ['summary', 'metrics', 'confusion', 'embedding', 'k-estimation', 'clusters', 'timings']) t.true(html.includes(`<section id="${id}"`), id);
  t.true(html.includes('id="warn-random-backbone"'));
  t.true(html.includes('AnomalyNCD') && html.includes('k-means baseline'));
  t.regex(html, /<td class="num best">1\.000<\/td>|<td class="num( best)?">\d\.\d{3}<\/td>/);
  t.true(html.includes('chosen K = 4'));
  t.true(html.includes('2025-06-01T12:00:00.000Z'));
  t.is((html.match(/<use href="#mk\d"/g) ?? []).length, data.embedding!.points.length);
  t.true(html.includes('18,234.9'));

  // Deterministic, and the warning goes away without the flag.
  t.is(renderReport(data), html);
  const plain = renderReport({ ...data, randomBackbone: false });
  t.false(plain.includes('warn-random-backbone'));
  t.is((renderReport(data, { maxSamplesPerCluster: 3 }).match(/<img /g) ?? []).length, 3 * clusterIds.length);
});

test('renderReport: a minimal report, and malformed data is rejected', (t) => {
  const src = pngDataUrl(new Tensor('uint8', [2, 2], Uint8Array.of(0, 80, 160, 240)));
  const minimal: ReportData = {
    title: 'Minimal',
    summary: { images: 1, crops: 1, k: 1, kChosenBy: 'fixed' },
    clusters: [{ id: 0, images: 1, regions: 1, samples: [{ src }] }],
  };
  const html = renderReport(minimal);
  assertNoExternal(t, html);
  t.true(html.includes('id="cluster-0"'));
  t.false(html.includes('<section id="confusion"'));
  t.false(html.includes('<section id="metrics"'));
  t.false(html.includes('warn-random-backbone'));

  const bad = (patch: Partial<ReportData>): void => {
    t.throws(() => renderReport({ ...minimal, ...patch } as ReportData), { instanceOf: InvalidArgumentError });
  };
  for (const s of ['https://example.com/a.png', 'javascript:alert(1)', 'data:text/html;base64,PHNjcmlwdD4=', `${src}" onerror="alert(1)`])
    bad({ clusters: [{ id: 0, images: 1, regions: 1, samples: [{ src: s }] }] });
  bad({ title: '' });
  bad({ summary: { images: -1, crops: 1, k: 1, kChosenBy: 'fixed' } });
  bad({ clusters: [{ id: 0, images: 1, regions: 1, samples: [] }, { id: 0, images: 1, regions: 1, samples: [] }] });
  bad({ confusion: { clusters: [0], labels: ['a', 'b'], counts: [[1]] } });
  bad({ timings: [{ stage: 'x', ms: Number.NaN }] });
  t.throws(() => renderReport(minimal, { maxSamplesPerCluster: -1 }), { instanceOf: InvalidArgumentError });
});

test('confusionMatrix counts per cluster and label', (t) => {
  const cm = confusionMatrix([1, 0, 1, 1, 2], ['b', 'a', 'b', 'a', 'c']);
  t.deepEqual(cm.clusters, [0, 1, 2]);
  t.deepEqual(cm.labels, ['a', 'b', 'c']);
  t.deepEqual(cm.counts, [[1, 0, 0], [1, 2, 0], [0, 0, 1]]);
  t.false('mapping' in cm);
  t.throws(() => confusionMatrix([0], ['a', 'b']), { instanceOf: InvalidArgumentError });
});

/** A discover result without native parts: what buildReportData reads. */
function fakeDiscoverResult(withLabels: boolean): DiscoverResult {
  const crop = (v: number) => ({ image: new Tensor('uint8', [4, 4, 3], new Uint8Array(48).fill(v)) });
  const clusters = [1, 0, 1, 2];
  const images = clusters.map((cluster, i) => ({
    name: `img${i}`,
    ...(withLabels ? { label: ['a', 'b', 'a', 'c'][i]! } : {}),
    cluster,
    probabilities: [0.2, 0.5, 0.3],
    regions: [{ box: [0, 0, 4, 4] as [number, number, number, number], cluster, probability: 0.5, maskArea: 4, score: 1 }],
    baselineCluster: 0,
  }));
  const result = {
    images,
    k: 3,
    kChoice: withLabels ? { mode: 'auto' as const, curve: [{ k: 2, score: 0.1 }, { k: 3, score: 0.3 }] } : { mode: 'given' as const },
    searchRange: [3, 250] as [number, number],
    timings: { mebinMsPerMap: 0.1, cropMsPerImage: 0.2, training: 12.5 },
    device: 'cpu',
    precision: 'bf16',
    warnings: ['from the run'],
    model: { backbone: { path: null, sha256: null }, arch: { patchSize: 16, embedDim: 96, depth: 4 }, epochsDone: 2 },
    crops: images.map((_, i) => ({ image: i, frozen: new Float32Array(3), trained: Float32Array.of(i, i * i, 1 - i), probabilities: new Float32Array(3) })),
    regions: { items: images.map((_, i) => ({ crops: [crop(10 * i)] })) },
  };
  if (withLabels) {
    const truth = images.map((i) => i.label!);
    const pred = images.map((i) => i.cluster);
    Object.assign(result, { metrics: { anomalyncd: evaluate(truth, pred), kmeansBaseline: evaluate(truth, [0, 0, 1, 1]) } });
  }
  return result as unknown as DiscoverResult;
}

test('buildReportData: the CLI\'s report from a discover result', (t) => {
  const data = buildReportData(fakeDiscoverResult(true), { dataset: 'mtd', warnings: ['w'] });
  t.is(data.subtitle, 'mtd; 4 images');
  t.true(data.randomBackbone);
  t.deepEqual(data.warnings, ['w']);
  t.deepEqual(data.summary.extra?.map((f) => f.value), ['random init (ViT patch 16, width 96, depth 4)', 2, '3–250', 'cpu (bf16)']);
  t.is(data.summary.kChosenBy, 'estimated');
  t.deepEqual(data.clusters.map((c) => [c.id, c.images, c.regions, c.samples.length]), [[0, 1, 1, 1], [1, 2, 2, 2], [2, 1, 1, 1]]);
  t.deepEqual(data.clusters[1]!.samples.map((s) => [s.caption, s.label]), [['img0', 'a'], ['img2', 'a']]);
  t.regex(data.clusters[0]!.samples[0]!.src, /^data:image\/png;base64,/);
  t.deepEqual(data.timings, [{ stage: 'training', ms: 12.5 }]);
  t.is(data.embedding?.points.length, 4);
  t.deepEqual(data.metrics?.map((m) => m.method), ['AnomalyNCD', 'k-means baseline (frozen features)']);
  t.deepEqual(data.confusion?.labels, ['a', 'b', 'c']);
  t.deepEqual(data.kCurve, { curve: [{ k: 2, score: 0.1 }, { k: 3, score: 0.3 }], chosen: 3 });
  t.notThrows(() => renderReport(data));

  const plain = buildReportData(fakeDiscoverResult(false), { backbone: '/models/dino_vitbase8_pretrain.pth', arch: 'dino_vitb8' });
  t.is(plain.subtitle, '4 images');
  t.false(plain.randomBackbone);
  t.deepEqual(plain.warnings, ['from the run']);
  t.is(plain.summary.extra?.[0]?.value, 'dino_vitbase8_pretrain.pth');
  t.is(plain.summary.kChosenBy, 'fixed');
  t.false('metrics' in plain || 'confusion' in plain || 'kCurve' in plain);
  t.throws(() => buildReportData(fakeDiscoverResult(false), { warnings: 'w' as unknown as string[] }), { instanceOf: InvalidArgumentError, message: /warnings/ });
});

// ---------------------------------------------------------------------------
// writeReport + headless Chromium
// ---------------------------------------------------------------------------

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-logging=stderr',
  '--v=0',
];

function chromium(args: string[]): { status: number | null; stdout: string; stderr: string; error?: Error } {
  const profile = tempDir('anomalyncd-chromium-');
  const r = spawnSync(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) };
}

/** Page console messages, uncaught errors and CSP violations as Chromium logs them to stderr. */
function consoleProblems(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /CONSOLE|Uncaught|Content.Security.Policy|Refused to/i.test(l));
}

test('the Chromium console check catches a page error (control)', (t) => {
  t.true(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
  const dir = tempDir();
  const page = join(dir, 'control.html');
  writeFileSync(page, '<!DOCTYPE html><title>control</title><p>x</p><script>console.error("boom-control"); undefinedFunction();</script>');
  const r = chromium(['--dump-dom', pathToFileURL(page).href]);
  t.is(r.error, undefined);
  t.is(r.status, 0, r.stderr);
  t.true(r.stdout.includes('<title>control</title>'));
  const problems = consoleProblems(r.stderr);
  t.true(problems.some((l) => l.includes('boom-control')), r.stderr);
  t.true(problems.some((l) => /Uncaught/.test(l)), r.stderr);
});

test('writeReport writes atomically; Chromium renders the report without console errors', (t) => {
  t.true(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
  const { data, clusterIds, shownPerCluster } = fixture;
  const dir = tempDir();
  const path = join(dir, 'out', 'report.html');
  return writeReport(path, data).then(() => {
    t.deepEqual(readdirSync(join(dir, 'out')), ['report.html']);
    const html = readFileSync(path, 'utf8');
    t.is(html, renderReport(data));
    const url = pathToFileURL(path).href;

    const dom = chromium(['--dump-dom', url]);
    t.is(dom.error, undefined);
    t.is(dom.status, 0, dom.stderr);
    t.deepEqual(consoleProblems(dom.stderr), []);
    t.true(dom.stdout.includes(`<title>${escapeHtml(TITLE)}</title>`));
    t.true(dom.stdout.includes(`<h1>${escapeHtml(TITLE)}</h1>`));
    for (const id of clusterIds) t.true(dom.stdout.includes(`id="cluster-${id}"`), `cluster ${id} in the DOM`);
    for (const id of ['summary', 'metrics', 'confusion', 'embedding', 'k-estimation', 'clusters', 'timings']) t.true(dom.stdout.includes(`<section id="${id}"`), id);
    t.is((dom.stdout.match(/<img /g) ?? []).length, [...shownPerCluster.values()].reduce((a, b) => a + b, 0));
    t.notRegex(dom.stdout, /<script/i);
    t.true(dom.stdout.includes('&lt;script&gt;alert('));

    const shot = join(dir, 'report.png');
    const r = chromium([`--screenshot=${shot}`, '--window-size=1200,2000', '--hide-scrollbars', url]);
    t.is(r.error, undefined);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(consoleProblems(r.stderr), []);
    t.true(existsSync(shot));
    const png = readFileSync(shot);
    t.true(statSync(shot).size > 30_000, `screenshot is only ${statSync(shot).size} bytes`);
    t.is(png.toString('latin1', 12, 16), 'IHDR');
    t.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1200, 2000]);
    // Non-trivial: many distinct colours (crops, heat map, plot).
    const colours = Number(
      python('import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]).convert("RGB")\nprint(len(im.getcolors(1 << 24)))', [shot]).trim(),
    );
    t.true(colours > 500, `${colours} colours`);
    if (process.env.ANOMALYNCD_KEEP_SCREENSHOT) writeFileSync(process.env.ANOMALYNCD_KEEP_SCREENSHOT, png);
  });
});
