// The K estimators (ts/analysis/estimate-k-async.ts, k-methods.ts) on data where K is
// unambiguous: well-separated Gaussian blobs for the feature methods, constructed
// predictions for the mass count; the async contract (worker thread, AbortSignal, typed
// errors); and the synthetic generator's eight defect types.
import test from 'ava';
import {
  AbortError,
  ALL_DEFECT_TYPES,
  BadInputError,
  countMassK,
  DEFAULT_K_METHOD,
  estimateK,
  estimateKAsync,
  evaluate,
  generateSynthetic,
  InvalidArgumentError,
  K_METHODS,
  kmeans,
} from 'anomalyncd';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fitGmm, gmmBic } from '../ts/analysis/gmm.js';
import { GMM_REG, GMM_TOL } from '../ts/analysis/k-methods.js';
import { prepare } from '../ts/analysis/samples.js';
import { blobs as sharedBlobs, python, tempDir } from './helpers.js';

/** The shared blobs with this file's separation (12). */
const blobs = (k: number, per: number, dim: number, seed: number) => sharedBlobs(k, per, dim, seed, 1, 12);

test('the method list and its default', (t) => {
  t.deepEqual([...K_METHODS], ['silhouette', 'mass', 'stability', 'gcd', 'eigengap', 'bic']);
  t.true((K_METHODS as readonly string[]).includes(DEFAULT_K_METHOD));
});

for (const method of ['silhouette', 'stability', 'eigengap', 'bic'] as const) {
  // bic's full covariances need samples: 60 per type in 8 dimensions (16 in 12 is too few: K = 2;
  // with 40, two blobs 11 sd apart cost less log-likelihood as one stretched Gaussian than
  // BIC's penalty for 45 more parameters, and K = 6 for 7)
  const [per, dim] = method === 'bic' ? [60, 8] : [16, 12];
  test(`estimateKAsync '${method}' finds K on separated blobs (K = 3, 5, 7)`, async (t) => {
    for (const k of [3, 5, 7]) {
      const { data, n } = blobs(k, per, dim, 100 + k);
      const r = await estimateKAsync(data, n, dim, { method, seed: 1 });
      t.is(r.method, method);
      t.is(r.k, k, `${method} K=${k}: curve ${JSON.stringify(r.curve)}`);
      t.deepEqual(r.curve.map((p) => p.k), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
      t.true(r.curve.every((p) => Number.isFinite(p.score)));
      t.true(r.ms > 0);
      t.is(typeof r.scoreName, 'string');
    }
  });
}

test("estimateKAsync 'silhouette' gives exactly the synchronous estimateK's K and curve", async (t) => {
  const { data, n } = blobs(4, 20, 10, 7);
  const a = await estimateKAsync(data, n, 10, { method: 'silhouette', seed: 5, kMin: 2, kMax: 8 });
  const s = estimateK(data, n, 10, { seed: 5, kMin: 2, kMax: 8 });
  t.is(a.k, s.k);
  t.deepEqual(a.curve, s.curve);
});

test("'bic': the mixture's log-likelihood is what scipy computes from its parameters, and as good as scikit-learn's fit", (t) => {
  // Elongated, unequal blobs (full covariances matter): 4 types, 30 each, 5 dimensions.
  const k = 4, dim = 5;
  const { data, n } = sharedBlobs(k, 30, dim, 17, 1, 8);
  for (let i = 0; i < n; i++) data[i * dim]! *= 1 + (i % k); // stretch the first axis per type
  const p = prepare('test', data, n, dim);
  const fit = fitGmm(p, k, 0, 3, 300, GMM_TOL, GMM_REG);
  t.true(fit.converged);
  t.true(Math.abs(fit.weights.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  const dir = tempDir();
  const write = (name: string, a: ArrayLike<number>): string => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.from(Float64Array.from(a).buffer));
    return path;
  };
  const out = python(
    `import sys, numpy as np
from scipy.stats import multivariate_normal
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
k, d = ${k}, ${dim}
x = np.fromfile(sys.argv[1]).reshape(-1, d)
w = np.fromfile(sys.argv[2]); mu = np.fromfile(sys.argv[3]).reshape(k, d); cov = np.fromfile(sys.argv[4]).reshape(k, d, d)
lp = np.stack([np.log(w[c]) + multivariate_normal(mu[c], cov[c]).logpdf(x) for c in range(k)], 1)
reg = ${GMM_REG} * x.var(0).mean()
g = GaussianMixture(k, covariance_type='full', n_init=3, random_state=0, reg_covar=reg, tol=${GMM_TOL}, max_iter=300).fit(x)
print(repr(logsumexp(lp, 1).sum()), repr(g.score(x) * len(x)), repr(g.bic(x)))`,
    [write('x', data), write('w', fit.weights), write('mu', fit.means), write('cov', fit.covariances)],
  );
  const [scipyLl, sklearnLl, sklearnBic] = out.trim().split(/\s+/).map(Number) as [number, number, number];
  t.log(`log L: ours ${fit.logLikelihood.toFixed(6)}, scipy from our parameters ${scipyLl.toFixed(6)}, scikit-learn's fit ${sklearnLl.toFixed(6)}; BIC ours ${gmmBic(fit, n, dim).toFixed(3)}, scikit-learn ${sklearnBic.toFixed(3)}`);
  t.true(Math.abs(fit.logLikelihood - scipyLl) <= 1e-8 * Math.abs(scipyLl));
  // Both reach the same optimum on separated blobs (EM stops within tol per sample).
  t.true(fit.logLikelihood >= sklearnLl - GMM_TOL * n, `ours ${fit.logLikelihood} vs scikit-learn ${sklearnLl}`);
  t.true(Math.abs(gmmBic(fit, n, dim) - sklearnBic) <= 2 * GMM_TOL * n + 1e-6 * Math.abs(sklearnBic));
});

test("estimateKAsync 'bic' is deterministic for a seed and its curve is -BIC", async (t) => {
  const { data, n } = blobs(3, 40, 8, 9);
  const a = await estimateKAsync(data, n, 8, { method: 'bic', seed: 4, kMax: 6 });
  const b = await estimateKAsync(data, n, 8, { method: 'bic', seed: 4, kMax: 6 });
  t.deepEqual(a.curve, b.curve);
  t.is(a.k, 3);
  const p = prepare('test', data, n, 8);
  for (const { k, score } of a.curve) t.true(Math.abs(score + gmmBic(fitGmm(p, k, 4, 3, 300, GMM_TOL, GMM_REG), n, 8)) <= 1e-9 * Math.abs(score));
  t.regex(a.scoreName, /BIC/);
});

test("estimateKAsync 'eigengap' scores the spectral gaps and peaks at K", async (t) => {
  const { data, n } = blobs(4, 20, 8, 21);
  const r = await estimateKAsync(data, n, 8, { method: 'eigengap', seed: 0 });
  t.is(r.k, 4);
  // λ_{K+1} - λ_K >= 0 for sorted eigenvalues, and the gap at the true K dominates.
  t.true(r.curve.every((p) => p.score >= -1e-9));
  const second = [...r.curve].sort((a, b) => b.score - a.score)[1]!;
  t.log(`gap at K = 4: ${r.curve.find((p) => p.k === 4)!.score.toFixed(4)}, next largest ${second.score.toFixed(4)} (K = ${second.k})`);
  t.true(r.curve.find((p) => p.k === 4)!.score > second.score);
});

test("estimateKAsync 'gcd' recovers K from two labelled classes with a bounded search", async (t) => {
  for (const k of [4, 6]) {
    const { data, truth, n } = blobs(k, 20, 10, 300 + k);
    // D^l: every other sample of classes 0 and 1 (they also occur among the unlabelled samples: the GCD setting).
    const idx = truth.map((c, i) => ({ c, i })).filter(({ c, i }) => c < 2 && i % 2 === 0);
    const ld = new Float32Array(idx.length * 10);
    idx.forEach(({ i }, j) => ld.set(data.subarray(i * 10, i * 10 + 10), j * 10));
    const r = await estimateKAsync(data, n, 10, { method: 'gcd', seed: 2, kMax: 10, labelled: { data: ld, n: idx.length, labels: idx.map(({ c }) => `class${c}`) } });
    t.is(r.k, k, JSON.stringify(r.curve));
    t.true(r.curve.length <= k + 1, `bounded search evaluated ${r.curve.length} of 9 values of K`);
    t.true(r.curve.every((p) => p.score >= 0 && p.score <= 1));
  }
});

test('estimateKAsync: typed errors, and an AbortSignal stops the worker', async (t) => {
  const { data, n } = blobs(3, 10, 4, 1);
  await t.throwsAsync(estimateKAsync(data, n, 4, { method: 'gcd' }), { instanceOf: InvalidArgumentError, message: /labelled/ });
  await t.throwsAsync(estimateKAsync(data, n, 4, { method: 'nope' as 'gcd' }), { instanceOf: InvalidArgumentError, message: /method/ });
  await t.throwsAsync(estimateKAsync(data, 2, 4), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(estimateKAsync(data, n, 4, { kMin: 5, kMax: 4 }), { instanceOf: InvalidArgumentError, message: /kMax/ });
  const bad = Float32Array.from(data);
  bad[7] = NaN;
  await t.throwsAsync(estimateKAsync(bad, n, 4), { instanceOf: BadInputError });
  const aborted = new AbortController();
  aborted.abort();
  await t.throwsAsync(estimateKAsync(data, n, 4, { signal: aborted.signal }), { instanceOf: AbortError });
  // A long stability run aborted mid-way rejects at once with AbortError.
  const big = blobs(6, 150, 32, 9);
  const ac = new AbortController();
  const t0 = performance.now();
  const p = estimateKAsync(big.data, big.n, 32, { method: 'stability', resamples: 200, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await t.throwsAsync(p, { instanceOf: AbortError });
  t.true(performance.now() - t0 < 5000);
});

test('estimateKAsync keeps the main thread free', async (t) => {
  const big = blobs(5, 120, 32, 11);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const r = await estimateKAsync(big.data, big.n, 32, { method: 'stability', resamples: 6 });
  clearInterval(timer);
  t.is(r.k, 5);
  // The estimate took many timer periods; the timer kept firing while it ran.
  t.true(ticks >= Math.floor(r.ms / 5 / 4), `ticks ${ticks} in ${r.ms.toFixed(0)} ms`);
});

test('countMassK counts the clusters holding real mass (half the uniform share)', (t) => {
  const kMax = 10;
  // 3 real clusters with 40/35/25 % of 100 images, plus 2 images (2 %) on a 4th cluster:
  // the threshold 1/(2 kMax) = 5 % keeps the three and drops the stray one.
  const p = (c: number): number[] => Array.from({ length: kMax }, (_, j) => (j === c ? 0.9 : 0.1 / (kMax - 1)));
  const probs = [...Array(40).fill(p(2)), ...Array(35).fill(p(7)), ...Array(23).fill(p(0)), ...Array(2).fill(p(5))];
  const r = countMassK(probs, kMax);
  t.is(r.k, 3);
  t.is(r.method, 'mass');
  t.deepEqual(r.curve.map((c) => c.k), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.deepEqual(r.curve.slice(0, 5).map((c) => c.score), [0.4, 0.35, 0.23, 0.02, 0]);
  // A stated threshold: 1 % keeps the stray cluster too.
  t.is(countMassK(probs, kMax, 0.01).k, 4);
  t.throws(() => countMassK(probs, 9), { instanceOf: InvalidArgumentError, message: /kMax/ });
  t.throws(() => countMassK([], 4), { instanceOf: InvalidArgumentError });
  t.throws(() => countMassK(probs, kMax, 2), { instanceOf: InvalidArgumentError, message: /threshold/ });
});

test('the synthetic generator draws up to 8 defect types that simple shape/brightness features separate', (t) => {
  t.is(ALL_DEFECT_TYPES.length, 8);
  t.is(new Set(ALL_DEFECT_TYPES).size, 8);
  const samples = generateSynthetic({ types: 8, perType: 10, good: 0, size: 96, mapSize: 48, seed: 4 });
  t.deepEqual([...new Set(samples.map((s) => s.label))], [...ALL_DEFECT_TYPES]);
  // Hand-made features: brightness change inside the mask, log area, boundary/area ratio.
  const n = samples.length;
  const feats = new Float64Array(n * 3);
  samples.forEach((s, i) => {
    const size = 96, m = s.mask.data, img = s.image.data;
    let inside = 0, outside = 0, area = 0, boundary = 0;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const p = y * size + x;
        if (m[p]) {
          area++;
          inside += img[3 * p]!;
          if (x === 0 || y === 0 || x === size - 1 || y === size - 1 || !m[p - 1] || !m[p + 1] || !m[p - size] || !m[p + size]) boundary++;
        } else outside += img[3 * p]!;
      }
    feats[3 * i] = (inside / area - outside / (size * size - area)) / 20;
    feats[3 * i + 1] = Math.log(area);
    feats[3 * i + 2] = (3 * boundary) / area;
  });
  const truth = samples.map((s) => s.label);
  const r = kmeans(feats, n, 3, 8, { seed: 0, nInit: 20 });
  const e = evaluate(truth, r.labels);
  t.log(`8 types, k-means on 3 hand-made features: NMI ${e.nmi.toFixed(3)}, F1 ${e.f1.toFixed(3)}`);
  t.true(e.nmi > 0.8);
  t.throws(() => generateSynthetic({ types: 9 }), { instanceOf: InvalidArgumentError });
  // The default (4 types) and an explicit types: 4 are the same draw.
  const a = generateSynthetic({ perType: 1, good: 1, size: 32, mapSize: 16 });
  const b = generateSynthetic({ perType: 1, good: 1, size: 32, mapSize: 16, types: 4 });
  t.deepEqual(a.map((s) => [s.name, [...s.image.data]]), b.map((s) => [s.name, [...s.image.data]]));
});

test('estimateKAsync refuses an unknown option and names the closest known one', async (t) => {
  const { data, n } = blobs(3, 10, 4, 2);
  await t.throwsAsync(estimateKAsync(data, n, 4, { methd: 'bic' } as never), { instanceOf: InvalidArgumentError, message: /unknown option 'methd' \(did you mean 'method'\?\)/ });
});
