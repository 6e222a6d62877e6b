// The TS parser fuzzer at scale (issue 10 item 2): each target of
// test/fuzz/parsers.ts for N executions (default 10^5), with the executions,
// outcome classes, corpus size, slowest execution, failures and peak RSS.
//   node dist/bench/parser-fuzz.js [EXECS] [SEED]
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fuzzTarget, parserTargets, scratchDir } from '../test/fuzz/parsers.js';

const execs = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? 1);
const only = process.env.FUZZ_TARGETS?.split(',');
const dir = scratchDir();
console.log(`# parser fuzz: ${execs} executions per target, seed ${seed}; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${new Date().toISOString()}`);
console.log('| target | executions | ok | typed errors | outcome classes | corpus | slowest ms | untyped/crash | s | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
let failures = 0;
for (const target of parserTargets(dir)) {
  if (only && !only.includes(target.name)) continue;
  const t0 = performance.now();
  const s = await fuzzTarget(target, seed, execs);
  const secs = (performance.now() - t0) / 1000;
  failures += s.failures.length;
  console.log(`| ${target.name} | ${s.execs} | ${s.ok} | ${s.typed} | ${s.outcomes} | ${s.corpus} | ${s.slowestMs.toFixed(1)} | ${s.failures.length} | ${secs.toFixed(0)} | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} |`);
  for (const f of s.failures.slice(0, 5)) console.log(`  FAIL ${target.name}: ${f.error}  input(base64/json)=${f.input.slice(0, 400)}`);
}
rmSync(dir, { recursive: true, force: true });
process.exitCode = failures > 0 ? 1 : 0;
