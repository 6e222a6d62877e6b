// The boundary property fuzzer at scale (issue 10 item 3): test/fuzz/boundary-run.ts
// in chunks of 500 calls (a fresh process and seed per chunk) until CALLS calls
// (default 10^4) or MINUTES minutes have run; prints calls per target and
// outcome, the error codes seen, failures (untyped errors, hangs, crashes) and
// the detached-buffer rounds.
//   node dist/bench/boundary-fuzz.js [CALLS=10000] [MINUTES=60] [DETACH_ROUNDS=20]
import { cpus, loadavg } from 'node:os';
import { runBoundaryFuzz, type Report } from '../test/fuzz/boundary-spawn.js';

const total = Number(process.argv[2] ?? 10_000);
const minutes = Number(process.argv[3] ?? 60);
const detachRounds = Number(process.argv[4] ?? 20);
const chunk = 500;
const t0 = performance.now();
const load0 = loadavg();
const counts: Record<string, Record<string, number>> = {};
const codes: Record<string, number> = {};
const failures: string[] = [];
let calls = 0;
let slow = 0;
let detach: Report['detach'] = [];
for (let seed = 1; calls < total && performance.now() - t0 < minutes * 60_000; seed++) {
  const n = Math.min(chunk, total - calls);
  try {
    const r = await runBoundaryFuzz(1000 + seed, n, seed === 1 ? detachRounds : 0, 30 * 60_000, 5000);
    calls += r.calls;
    slow += r.slow.length;
    for (const [k, c] of Object.entries(r.counts)) for (const [v, x] of Object.entries(c)) ((counts[k] ??= {})[v] = (counts[k]![v] ?? 0) + x);
    for (const [k, x] of Object.entries(r.errorCodes)) codes[k] = (codes[k] ?? 0) + x;
    for (const f of r.failures) failures.push(`${f.verdict} ${f.target}: ${f.error} <- ${f.args.slice(0, 200)}`);
    if (seed === 1) detach = r.detach;
  } catch (e) {
    failures.push(`crash/hang (seed ${1000 + seed}): ${(e as Error).message.slice(0, 500)}`);
    calls += n;
  }
}
const s = (performance.now() - t0) / 1000;
console.log(`# boundary fuzz: ${calls} calls in ${s.toFixed(0)} s (${Object.keys(counts).length} targets; ${slow} valid-but-slow calls aborted at their 5 s deadline); ${cpus().length} cores, load ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${new Date().toISOString()}`);
console.log('| target | calls | results | typed errors | caller exception passed through | untyped | hangs |');
console.log('|---|---|---|---|---|---|---|');
for (const [k, c] of Object.entries(counts).sort())
  console.log(`| ${k} | ${Object.values(c).reduce((a, b) => a + b, 0)} | ${c.result ?? 0} | ${c.typed ?? 0} | ${c.caller ?? 0} | ${c.untyped ?? 0} | ${c.hang ?? 0} |`);
console.log(`error codes: ${Object.entries(codes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log('detached mid-job:', detach.map((d) => `${d.job}/${d.how}: ${d.rounds} rounds, ${d.mismatches} mismatches, ${d.errors.length} errors`).join('; '));
console.log(`failures: ${failures.length}`);
for (const f of failures.slice(0, 20)) console.log('  ' + f);
process.exitCode = failures.length > 0 ? 1 : 0;
