// Boundary property test (issue 10 item 3): every exported function called with
// generated wrong values settles with a result or a typed AnomalyNCDError (or the
// caller's own getter exception, unchanged) — never a crash, a hang or an untyped
// error; and input buffers transferred away (detached) while a zero-copy job reads
// them do not crash it or change its result (the binding copies Tensor inputs at
// the call: binding/napi_util.h TensorView). The fuzzer runs in a child process
// (test/fuzz/boundary-run.ts) so that a crash or hang is reported, not fatal.
// bench/boundary-fuzz.ts runs the same fuzzer at ≥ 10^4 calls.
import test from 'ava';
import { runBoundaryFuzz } from './fuzz/boundary-spawn.js';

test.serial('every exported function, called with 300 wrong values, gives a result or a typed error', async (t) => {
  const report = await runBoundaryFuzz(20261129, 300, 0, 170_000, 5000);
  t.is(report.calls, 300);
  t.deepEqual(report.failures, [], JSON.stringify(report.failures.slice(0, 5), null, 1));
  // The fuzzer reached the API's typed errors and some valid results: it tests something.
  const sum = (k: string) => Object.values(report.counts).reduce((s, c) => s + (c[k] ?? 0), 0);
  t.true(sum('typed') > 120, `typed ${sum('typed')}`);
  t.true(sum('result') > 10, `results ${sum('result')}`);
  t.true((report.errorCodes['ERR_INVALID_ARGUMENT'] ?? 0) > 40);
  t.true(Object.keys(report.counts).length >= 25, `targets reached: ${Object.keys(report.counts).join(', ')}`);
});

test.serial('input buffers transferred away (structuredClone / postMessage) and collected mid-job: no crash, same results', async (t) => {
  const report = await runBoundaryFuzz(7, 0, 4, 150_000);
  t.is(report.detach.length, 8);
  for (const d of report.detach) {
    t.is(d.rounds, 4, `${d.job} ${d.how}`);
    t.deepEqual(d.errors, [], `${d.job} ${d.how}`);
    t.is(d.mismatches, 0, `${d.job} ${d.how}: results changed after the input was detached`);
  }
});
