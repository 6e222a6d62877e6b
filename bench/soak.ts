// Soak (issue 10 item 5): N calls each of binarize, extractRegions, embed
// (Backbone.embedCrops) and predict (a tiny trained model) on small inputs in
// one process, in rounds with a full GC between rounds; RSS and
// process.memoryUsage().external sampled after each round's GC. Pass: RSS at
// the end is at most 5 % above RSS at the end of the first tenth of the run.
//   node --expose-gc dist/bench/soak.js [CALLS_PER_KIND=10000] [ROUNDS=50]
import { cpus, loadavg } from 'node:os';
import { JOB_KINDS, makeWorkload, runJobOf } from '../test/fuzz/workload.js';

const perKind = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 50);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mb = (b: number) => b / 1048576;

const w = await makeWorkload(11);
const perRound = Math.ceil(perKind / rounds);
const samples: { round: number; calls: number; rss: number; external: number; heap: number; s: number }[] = [];
const t0 = performance.now();
const load0 = loadavg();
let calls = 0;
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < perRound; i++) {
    // A few jobs in flight at once, as a service would have.
    await Promise.all(JOB_KINDS.map((k, j) => runJobOf(w, k, r * perRound + i + j)));
    calls += JOB_KINDS.length;
  }
  gc();
  gc();
  await new Promise((res) => setTimeout(res, 10));
  const m = process.memoryUsage();
  samples.push({ round: r + 1, calls, rss: m.rss, external: m.external, heap: m.heapUsed, s: (performance.now() - t0) / 1000 });
}
w.dispose();

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
const tenth = samples[Math.max(0, Math.ceil(rounds / 10) - 1)]!;
const last = samples[samples.length - 1]!;
const after = samples.filter((s) => s.round >= tenth.round);
const growth = (last.rss - tenth.rss) / tenth.rss;
const rssSlope = slope(after.map((s) => s.calls), after.map((s) => s.rss)) * 10_000;
const extSlope = slope(after.map((s) => s.calls), after.map((s) => s.external)) * 10_000;
console.log(`# soak: ${calls} calls (${calls / JOB_KINDS.length} per kind: ${JOB_KINDS.join(', ')}), ${rounds} rounds, ${last.s.toFixed(0)} s; ${cpus().length} cores, load ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${new Date().toISOString()}`);
console.log('| round | calls | RSS MB | external MB | heap MB |');
console.log('|---|---|---|---|---|');
for (const s of samples.filter((s, i) => i === 0 || s.round === tenth.round || s.round % Math.max(1, Math.floor(rounds / 10)) === 0 || i === samples.length - 1))
  console.log(`| ${s.round} | ${s.calls} | ${mb(s.rss).toFixed(1)} | ${mb(s.external).toFixed(2)} | ${mb(s.heap).toFixed(1)} |`);
console.log(`RSS at the end of the first tenth ${mb(tenth.rss).toFixed(1)} MB, at the end ${mb(last.rss).toFixed(1)} MB: ${(growth * 100).toFixed(2)} % (limit 5 %)`);
console.log(`slopes after the first tenth: RSS ${mb(rssSlope).toFixed(3)} MB per 10^4 calls, external ${mb(extSlope).toFixed(4)} MB per 10^4 calls`);
console.log(growth <= 0.05 ? 'PASS' : 'FAIL');
process.exitCode = growth <= 0.05 ? 0 : 1;
