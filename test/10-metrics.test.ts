// Clustering metrics (METHOD.md §8, T29) against scikit-learn 1.2 / SciPy goldens
// made by test/fixtures/make_metrics_fixtures.py.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, InvalidArgumentError, type EvaluationResult } from 'anomalyncd';
import { hungarianMax } from '../ts/analysis/metrics.js';
import { prng, repoRoot } from './helpers.js';

interface MetricCase {
  name: string;
  truth: (string | number)[];
  pred: number[];
  nmi: number;
  ari: number;
  f1: number;
  correct: number;
}

const fixtures = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'metrics_fixtures.json'), 'utf8')) as {
  metrics: MetricCase[];
};

/** Accuracy implied by a mapping, recomputed from scratch. */
function accuracyFromMapping(truth: readonly (string | number)[], pred: readonly number[], r: EvaluationResult): number {
  const to = new Map(r.mapping.map((m) => [m.cluster, m.label]));
  let ok = 0;
  for (let i = 0; i < truth.length; i++) if (to.get(pred[i]!) === truth[i]) ok++;
  return ok / truth.length;
}

function checkMapping(t: import('ava').ExecutionContext, c: { truth: (string | number)[]; pred: number[] }, r: EvaluationResult): void {
  const clusters = [...new Set(c.pred)].sort((a, b) => a - b);
  const classes = new Set(c.truth);
  t.deepEqual(r.mapping.map((m) => m.cluster), clusters, 'one entry per cluster, sorted');
  const used = r.mapping.filter((m) => m.label !== null).map((m) => m.label);
  t.is(new Set(used).size, used.length, 'one-to-one');
  t.is(used.length, Math.min(clusters.length, classes.size), 'complete matching');
  for (const l of used) t.true(classes.has(l!), `label ${String(l)} exists`);
}

test('evaluate matches scikit-learn on every fixture (1e-9)', (t) => {
  t.true(fixtures.metrics.length >= 60);
  let bitExact = 0;
  for (const c of fixtures.metrics) {
    const r = evaluate(c.truth, c.pred);
    t.true(Math.abs(r.nmi - c.nmi) <= 1e-9, `${c.name}: nmi ${r.nmi} vs ${c.nmi}`);
    t.true(Math.abs(r.ari - c.ari) <= 1e-9, `${c.name}: ari ${r.ari} vs ${c.ari}`);
    t.true(Math.abs(r.f1 - c.f1) <= 1e-9, `${c.name}: f1 ${r.f1} vs ${c.f1}`);
    t.is(r.correct, c.correct, `${c.name}: correct`);
    if (r.nmi === c.nmi && r.ari === c.ari && r.f1 === c.f1) bitExact++;
  }
  t.log(`${bitExact}/${fixtures.metrics.length} fixtures bit-identical to sklearn`);
});

test('the returned mapping is a valid optimal assignment', (t) => {
  for (const c of fixtures.metrics) {
    const r = evaluate(c.truth, c.pred);
    checkMapping(t, c, r);
    t.is(accuracyFromMapping(c.truth, c.pred, r), r.f1, `${c.name}: F1 from mapping`);
    t.is(r.f1, c.f1, `${c.name}: optimal (SciPy's value)`);
  }
});

test('edge cases follow sklearn conventions', (t) => {
  t.like(evaluate([5], [0]), { nmi: 1, ari: 1, f1: 1 });
  t.like(evaluate(['x', 'x', 'x'], [2, 2, 2]), { nmi: 1, ari: 1, f1: 1 });
  t.like(evaluate([0, 1, 2, 3], [0, 0, 0, 0]), { nmi: 0, ari: 0, f1: 0.25 });
  t.like(evaluate([0, 0, 0, 0], [0, 1, 2, 3]), { nmi: 0, ari: 0, f1: 0.25 });
  t.like(evaluate([0, 0, 1, 1], [0, 1, 0, 1]), { nmi: 0, ari: -0.5, f1: 0.5 });
  const r = evaluate(['a', 'b', 'a', 'b'], [7, 3, 7, 3]);
  t.deepEqual(r.mapping, [{ cluster: 3, label: 'b' }, { cluster: 7, label: 'a' }]);
  // more clusters than classes: one cluster stays unmatched
  const u = evaluate(['a', 'a', 'a', 'b'], [0, 0, 1, 2]);
  t.is(u.f1, 0.75);
  t.deepEqual(u.mapping, [{ cluster: 0, label: 'a' }, { cluster: 1, label: null }, { cluster: 2, label: 'b' }]);
  // typed arrays are accepted for predictions
  t.like(evaluate([1, 1, 2], Int32Array.from([4, 4, 0])), { ari: 1, f1: 1 });
});

test('NMI and ARI do not depend on cluster ids; F1 is a multiple of 1/N (T29)', (t) => {
  const rnd = prng(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + Math.floor(rnd() * 200);
    const truth = Array.from({ length: n }, () => Math.floor(rnd() * 5));
    const pred = Array.from({ length: n }, () => Math.floor(rnd() * 6));
    const perm = [11, 3, 0, 42, 8, 5];
    const a = evaluate(truth, pred);
    const b = evaluate(truth, pred.map((p) => perm[p]!));
    t.true(Math.abs(a.nmi - b.nmi) <= 1e-12);
    t.is(a.ari, b.ari);
    t.is(a.f1, b.f1);
    t.is(Math.round(a.f1 * n), a.correct);
    t.true(Math.abs(a.f1 * n - a.correct) < 1e-9);
    t.true(a.nmi >= 0 && a.nmi <= 1 + 1e-12 && a.ari <= 1 && a.ari >= -0.5);
  }
});

function bruteForceMax(w: number[], rows: number, cols: number): number {
  let best = -Infinity;
  const usedCols = new Array<boolean>(cols).fill(false);
  const rec = (r: number, taken: number, sum: number): void => {
    if (r === rows) {
      if (taken === Math.min(rows, cols)) best = Math.max(best, sum);
      return;
    }
    // leave row r unmatched only when rows > cols
    if (rows > cols) rec(r + 1, taken, sum);
    for (let c = 0; c < cols; c++) {
      if (usedCols[c]) continue;
      usedCols[c] = true;
      rec(r + 1, taken + 1, sum + w[r * cols + c]!);
      usedCols[c] = false;
    }
  };
  rec(0, 0, 0);
  return best;
}

test('hungarianMax is optimal on random rectangular matrices (brute force)', (t) => {
  const rnd = prng(99);
  for (let trial = 0; trial < 200; trial++) {
    const rows = 1 + Math.floor(rnd() * 6);
    const cols = 1 + Math.floor(rnd() * 6);
    const w = Array.from({ length: rows * cols }, () => Math.floor(rnd() * 10) - (trial % 3 === 0 ? 5 : 0));
    const match = hungarianMax(w, rows, cols);
    const seen = new Set<number>();
    let sum = 0;
    let matched = 0;
    for (let r = 0; r < rows; r++) {
      const c = match[r]!;
      if (c < 0) continue;
      t.false(seen.has(c));
      seen.add(c);
      sum += w[r * cols + c]!;
      matched++;
    }
    t.is(matched, Math.min(rows, cols));
    t.is(sum, bruteForceMax(w, rows, cols), `trial ${trial} ${rows}x${cols}`);
  }
  t.deepEqual(Array.from(hungarianMax([], 0, 3)), []);
  t.throws(() => hungarianMax([1, 2, 3], 2, 2), { instanceOf: InvalidArgumentError });
});

test('a large all-distinct case stays fast', (t) => {
  const n = 600;
  const truth = Array.from({ length: n }, (_, i) => i);
  const pred = Array.from({ length: n }, (_, i) => (i * 7) % n);
  const t0 = performance.now();
  const r = evaluate(truth, pred);
  const ms = performance.now() - t0;
  t.like(r, { ari: 1, f1: 1 });
  t.true(Math.abs(r.nmi - 1) < 1e-12);
  t.log(`600 x 600 matching: ${ms.toFixed(0)} ms`);
  t.true(ms < 5000);
});

test('bad inputs throw InvalidArgumentError naming the argument', (t) => {
  const bad = (f: () => unknown, re: RegExp): void => {
    const e = t.throws(f, { instanceOf: InvalidArgumentError });
    t.is(e?.code, 'ERR_INVALID_ARGUMENT');
    t.regex(e?.message ?? '', re);
  };
  bad(() => evaluate([], []), /'truth' must not be empty/);
  bad(() => evaluate([1, 2], [0]), /'pred' has 1 entries but 'truth' has 2/);
  bad(() => evaluate([1, 2], [0, -1]), /'pred\[1\]' must be a non-negative integer/);
  bad(() => evaluate([1, 2], [0, 1.5]), /'pred\[1\]'/);
  bad(() => evaluate([1, 2], [0, Number.NaN]), /'pred\[1\]'/);
  bad(() => evaluate([1, 2], [0, '1' as unknown as number]), /'pred\[1\]'/);
  bad(() => evaluate([1, Number.NaN], [0, 1]), /'truth\[1\]'/);
  bad(() => evaluate([1, null as unknown as number], [0, 1]), /'truth\[1\]'/);
  bad(() => evaluate([1, 'a'], [0, 1]), /'truth' mixes strings and numbers/);
  bad(() => evaluate(null as unknown as number[], [0]), /'truth'/);
  bad(() => evaluate([0], 5 as unknown as number[]), /'pred'/);
});
