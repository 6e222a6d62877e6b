// k-means, silhouette and K estimation (ts/cluster.ts). Silhouette goldens come
// from scikit-learn via test/fixtures/make_metrics_fixtures.py; k-means is
// cross-checked against sklearn's KMeans inertia through Debian's python3.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError, estimateK, evaluate, InvalidArgumentError, kmeans, silhouette } from 'anomalyncd';
import { blobs, python, repoRoot, tempDir } from './helpers.js';

interface SilhouetteCase {
  name: string;
  n: number;
  dim: number;
  data: number[];
  labels: number[];
  score: number;
}

const fixtures = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'metrics_fixtures.json'), 'utf8')) as {
  silhouette: SilhouetteCase[];
};

test('k-means recovers well-separated Gaussian blobs (ARI 1)', (t) => {
  for (const [k, dim, seed] of [[3, 2, 1], [4, 16, 2], [6, 50, 3], [10, 32, 4]] as const) {
    const { data, truth, n } = blobs(k, 25, dim, seed);
    const r = kmeans(data, n, dim, k, { seed: 123 });
    t.is(r.labels.length, n);
    t.is(r.centroids.length, k * dim);
    const m = evaluate(truth, r.labels);
    t.is(m.ari, 1, `k=${k} dim=${dim}`);
    t.is(m.f1, 1);
    t.true(r.inertia > 0 && Number.isFinite(r.inertia));
  }
});

test('labels, centroids and inertia are consistent', (t) => {
  const { data, n } = blobs(5, 30, 8, 11, 4, 6); // overlapping blobs
  const dim = 8, k = 5;
  const r = kmeans(data, n, dim, k, { seed: 5 });
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    const d = (j: number): number => {
      let s = 0;
      for (let q = 0; q < dim; q++) s += (data[i * dim + q]! - r.centroids[j * dim + q]!) ** 2;
      return s;
    };
    const own = d(r.labels[i]!);
    inertia += own;
    for (let j = 0; j < k; j++) t.true(own <= d(j) * (1 + 1e-6) + 1e-9, `sample ${i} is nearest to its centroid`);
  }
  t.true(Math.abs(inertia - r.inertia) <= 1e-5 * r.inertia, `${inertia} vs ${r.inertia}`);
  // every centroid is the mean of its members
  for (let j = 0; j < k; j++) {
    const members = [...r.labels.keys()].filter((i) => r.labels[i] === j);
    t.true(members.length > 0);
    for (let q = 0; q < dim; q++) {
      const mean = members.reduce((s, i) => s + data[i * dim + q]!, 0) / members.length;
      t.true(Math.abs(mean - r.centroids[j * dim + q]!) < 1e-4);
    }
  }
});

test('k-means is deterministic for a fixed seed', (t) => {
  const { data, n } = blobs(6, 20, 12, 21, 5, 5);
  const a = kmeans(data, n, 12, 6, { seed: 42 });
  const b = kmeans(data, n, 12, 6, { seed: 42 });
  t.deepEqual(Array.from(a.labels), Array.from(b.labels));
  t.deepEqual(Array.from(a.centroids), Array.from(b.centroids));
  t.is(a.inertia, b.inertia);
  const ga = kmeans(data, n, 12, 6, { seed: 42, method: 'gram' });
  const gb = kmeans(data, n, 12, 6, { seed: 42, method: 'gram' });
  t.deepEqual(Array.from(ga.labels), Array.from(gb.labels));
  t.deepEqual(Array.from(ga.centroids), Array.from(gb.centroids));
  t.is(ga.inertia, gb.inertia);
  // a single init with another seed may differ, but more inits never do worse than their first
  const one = kmeans(data, n, 12, 6, { seed: 42, nInit: 1 });
  t.true(a.inertia <= one.inertia);
});

test('k-means inertia matches scikit-learn KMeans on separated blobs', (t) => {
  const { data, n } = blobs(4, 40, 10, 31, 1.5, 15);
  const dir = tempDir();
  const path = join(dir, 'x.f32');
  writeFileSync(path, Buffer.from(data.buffer));
  const out = python(
    `import sys, numpy as np
from sklearn.cluster import KMeans
x = np.fromfile(sys.argv[1], dtype=np.float32).reshape(-1, 10).astype(np.float64)
print(repr(KMeans(n_clusters=4, n_init=10, random_state=0).fit(x).inertia_))`,
    [path],
  );
  const theirs = Number(out.trim());
  const ours = kmeans(data, n, 10, 4, { seed: 0 }).inertia;
  t.true(Math.abs(ours - theirs) <= 1e-9 * theirs, `ours ${ours} sklearn ${theirs}`);
});

test('k larger than the number of distinct points, and k = n', (t) => {
  const dim = 3;
  const pts = [[0, 0, 0], [5, 5, 5], [-3, 1, 2]];
  const n = 12;
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) data.set(pts[i % 3]!, i * dim);
  for (const method of ['direct', 'gram'] as const) {
    const r = kmeans(data, n, dim, 5, { seed: 1, method });
    t.is(r.inertia, 0);
    t.true(new Set(r.labels).size <= 3);
    t.is(evaluate(Array.from({ length: n }, (_, i) => i % 3), r.labels).ari, 1);
    for (const l of r.labels) t.true(l >= 0 && l < 5);
    // every centroid sits on a data point
    for (let j = 0; j < 5; j++) t.true(pts.some((p) => p.every((v, q) => v === r.centroids[j * dim + q])), `${method} centroid ${j}`);
  }
  const all = kmeans(Float32Array.from([1, 2, 3, 4]), 4, 1, 4, { seed: 0 });
  t.is(all.inertia, 0);
  t.is(new Set(all.labels).size, 4);
  const single = kmeans(Float32Array.from([1, 2, 3, 6]), 4, 1, 1);
  t.deepEqual(Array.from(single.centroids), [3]);
  t.is(single.inertia, 4 + 1 + 0 + 9);
});

test('silhouette matches scikit-learn silhouette_score (1e-9)', (t) => {
  t.true(fixtures.silhouette.length >= 3);
  for (const c of fixtures.silhouette) {
    const s = silhouette(Float32Array.from(c.data), c.n, c.dim, c.labels);
    t.true(Math.abs(s - c.score) <= 1e-9, `${c.name}: ${s} vs ${c.score}`);
  }
});

test('silhouette: hand-checked small case and singleton convention', (t) => {
  // points 0, 1 | 10 ; a(0)=1, b(0)=10 -> 0.9 ; a(1)=1, b(1)=9 -> 8/9 ; singleton -> 0
  const s = silhouette(Float64Array.from([0, 1, 10]), 3, 1, [0, 0, 1]);
  t.true(Math.abs(s - (0.9 + 8 / 9 + 0) / 3) < 1e-15);
  t.throws(() => silhouette(Float64Array.from([0, 1, 2]), 3, 1, [0, 0, 0]), { instanceOf: InvalidArgumentError, message: /distinct labels/ });
  t.throws(() => silhouette(Float64Array.from([0, 1, 2]), 3, 1, [0, 1, 2]), { instanceOf: InvalidArgumentError });
  t.throws(() => silhouette(Float64Array.from([0, 1, 2]), 3, 1, [0, 1]), { instanceOf: InvalidArgumentError, message: /'labels'/ });
});

test('estimateK finds k = 4 on 4 separated blobs', (t) => {
  const { data, truth, n } = blobs(4, 30, 24, 41, 1, 12);
  const r = estimateK(data, n, 24, { seed: 3 });
  t.is(r.k, 4);
  t.deepEqual(r.curve.map((p) => p.k), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const best = Math.max(...r.curve.map((p) => p.score));
  t.is(r.curve.find((p) => p.k === 4)!.score, best);
  t.is(evaluate(truth, r.clustering.labels).ari, 1);
  const narrow = estimateK(data, n, 24, { seed: 3, kMin: 3, kMax: 5, nInit: 2 });
  t.deepEqual(narrow.curve.map((p) => p.k), [3, 4, 5]);
  t.is(narrow.k, 4);
});

test('n = 600, dim = 768, k = 10 runs in well under a few seconds; silhouette agrees with sklearn there', (t) => {
  const { data, truth, n } = blobs(10, 60, 768, 51, 1, 3);
  const t0 = performance.now();
  const r = kmeans(data, n, 768, 10, { seed: 0 });
  const ms = performance.now() - t0;
  t.log(`kmeans 600x768 k=10 nInit=10: ${ms.toFixed(0)} ms, ${r.iterations} iterations`);
  t.is(evaluate(truth, r.labels).ari, 1);
  t.true(ms < 4000);
  const t1 = performance.now();
  const s = silhouette(data, n, 768, r.labels);
  t.log(`silhouette 600x768: ${(performance.now() - t1).toFixed(0)} ms`);
  const dir = tempDir();
  writeFileSync(join(dir, 'x.f32'), Buffer.from(data.buffer));
  writeFileSync(join(dir, 'l.i32'), Buffer.from(r.labels.buffer));
  const out = python(
    `import sys, numpy as np
from sklearn.metrics import silhouette_score
x = np.fromfile(sys.argv[1] + '/x.f32', dtype=np.float32).reshape(-1, 768).astype(np.float64)
l = np.fromfile(sys.argv[1] + '/l.i32', dtype=np.int32)
print(repr(silhouette_score(x, l)))`,
    [dir],
  );
  t.true(Math.abs(s - Number(out.trim())) <= 1e-9, `ours ${s} sklearn ${out.trim()}`);
});

test("the 'gram' and 'direct' k-means paths agree", (t) => {
  for (const [k, dim, seed] of [[3, 2, 61], [5, 64, 62], [8, 200, 63]] as const) {
    const { data, truth, n } = blobs(k, 20, dim, seed, 1, 10);
    const g = kmeans(data, n, dim, k, { seed: 9, method: 'gram' });
    const d = kmeans(data, n, dim, k, { seed: 9, method: 'direct' });
    t.is(evaluate(truth, g.labels).ari, 1);
    t.deepEqual(Array.from(g.labels), Array.from(d.labels), `k=${k} dim=${dim}`);
    t.true(Math.abs(g.inertia - d.inertia) <= 1e-9 * d.inertia);
    for (let i = 0; i < g.centroids.length; i++) t.true(Math.abs(g.centroids[i]! - d.centroids[i]!) <= 1e-5);
  }
  // overlapping data: both paths reach (about) the same optimum
  const { data, n } = blobs(6, 30, 40, 64, 6, 3);
  const g = kmeans(data, n, 40, 6, { seed: 1, method: 'gram' });
  const d = kmeans(data, n, 40, 6, { seed: 1, method: 'direct' });
  t.true(Math.abs(g.inertia - d.inertia) <= 1e-3 * d.inertia, `${g.inertia} vs ${d.inertia}`);
  t.throws(() => kmeans(data, n, 40, 6, { method: 'fast' as 'auto' }), { instanceOf: InvalidArgumentError, message: /method/ });
});

test('estimateK returns exactly the kmeans clustering for the chosen K', (t) => {
  const { data, n } = blobs(5, 40, 300, 71, 1, 2);
  const t0 = performance.now();
  const r = estimateK(data, n, 300, { seed: 17 });
  t.log(`estimateK 200x300 K=2..10: ${(performance.now() - t0).toFixed(0)} ms, curve ${JSON.stringify(r.curve.map((p) => +p.score.toFixed(4)))}`);
  t.is(r.k, 5);
  const again = kmeans(data, n, 300, r.k, { seed: 17 });
  t.deepEqual(Array.from(r.clustering.labels), Array.from(again.labels));
  t.is(r.clustering.inertia, again.inertia);
  t.is(r.curve.find((p) => p.k === r.k)!.score, silhouette(data, n, 300, again.labels));
});

test('bad arguments are typed errors', (t) => {
  const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
  t.throws(() => kmeans(data, 3, 2, 4), { instanceOf: InvalidArgumentError, message: /'k'/ });
  t.throws(() => kmeans(data, 3, 2, 0), { instanceOf: InvalidArgumentError, message: /'k'/ });
  t.throws(() => kmeans(data, 4, 2, 2), { instanceOf: InvalidArgumentError, message: /'data' has 6 values/ });
  t.throws(() => kmeans(data, 3, 2, 2, { nInit: 0 }), { instanceOf: InvalidArgumentError, message: /nInit/ });
  t.throws(() => kmeans(data, 3, 2, 2, { tol: -1 }), { instanceOf: InvalidArgumentError, message: /tol/ });
  t.throws(() => kmeans([0, 1] as unknown as Float32Array, 2, 1, 1), { instanceOf: InvalidArgumentError, message: /'data'/ });
  t.throws(() => kmeans(Float32Array.from([0, Number.NaN]), 2, 1, 1), { instanceOf: BadInputError });
  t.throws(() => estimateK(data, 2, 3), { instanceOf: InvalidArgumentError, message: /at least 3/ });
  t.throws(() => estimateK(data, 3, 2, { kMax: 3 }), { instanceOf: InvalidArgumentError, message: /kMax/ });
  t.throws(() => estimateK(data, 6, 1, { kMin: 4, kMax: 3 }), { instanceOf: InvalidArgumentError, message: /kMax/ });
});
