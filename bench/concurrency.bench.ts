// Event-loop lag while heavy native jobs run (issue 10 item 7): delay percentiles
// from perf_hooks.monitorEventLoopDelay (5 ms resolution), idle and during
// (a) extractRegions on large synthetic images with all cores, (b) 100 overlapping
// mixed jobs (binarize, extractRegions, embed, predict), (c) an abort storm.
//   node --expose-gc dist/bench/concurrency.bench.js
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { extractRegions, generateSynthetic } from '../ts/index.js';
import { JOB_KINDS, makeWorkload, runJobOf } from '../test/fuzz/workload.js';

const w = await makeWorkload(3);
const big = generateSynthetic({ perType: 2, good: 0, size: 1024, mapSize: 1024, seed: 3 });
async function measure(name: string, work: () => Promise<unknown>): Promise<void> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  // A second, plain measure: the longest gap between ticks of a 1 ms interval.
  let last = performance.now();
  let gap = 0;
  let ticks = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    ticks++;
  }, 1);
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  clearInterval(tick);
  gap = Math.max(gap, performance.now() - last);
  h.disable();
  const f = (x: number) => (x / 1e6).toFixed(1);
  console.log(`| ${name} | ${ms.toFixed(0)} | ${f(h.percentile(50))} | ${f(h.percentile(99))} | ${f(h.max)} | ${h.count} | ${gap.toFixed(1)} (${ticks} ticks) |`);
}
console.log(`# event-loop delay: ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${new Date().toISOString()}`);
console.log('| work | wall ms | delay p50 ms | p99 ms | max ms | samples | longest gap between 1 ms ticks, ms |');
console.log('|---|---|---|---|---|---|---|');
await measure('idle (1 s timer)', () => new Promise((r) => setTimeout(r, 1000)));
await measure('extractRegions, 10 images 1024², all cores', () => extractRegions(big.map((s) => s.image), big.map((s) => s.map)));
await measure('100 overlapping mixed jobs', () => Promise.all(Array.from({ length: 100 }, (_, i) => runJobOf(w, JOB_KINDS[i % 4]!, i))));
await measure('abort storm: 2000 jobs, random aborts', () =>
  Promise.all(
    Array.from({ length: 2000 }, (_, i) => {
      const c = new AbortController();
      setTimeout(() => c.abort(), i % 20);
      return runJobOf(w, JOB_KINDS[i % 2]!, i, c.signal).catch(() => undefined);
    }),
  ),
);
w.dispose();
