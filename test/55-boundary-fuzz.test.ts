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

// The five untyped errors the 10^4-call bench run found after the merge (bench/RESULTS.md,
// Reliability): each is now a typed InvalidArgumentError.
test.serial('regressions of the 10^4-call run: null options, a hostile shape entry, a non-object discover item', async (t) => {
  const { binarize, discover, extractRegions, fit, InvalidArgumentError, Tensor } = await import('anomalyncd');
  const map = () => new Tensor('uint8', [32, 32]);
  const image = () => new Tensor('uint8', [32, 32, 3]);
  await t.throwsAsync(binarize([map()], null as never), { instanceOf: InvalidArgumentError, message: /options must be an object/ });
  await t.throwsAsync(extractRegions([image()], [map()], null as never), { instanceOf: InvalidArgumentError, message: /options must be an object/ });
  t.throws(() => new Tensor('uint8', [Object.create(null) as number, 4], new Uint8Array(4)), { instanceOf: InvalidArgumentError, message: /must hold non-negative integers/ });
  await t.throwsAsync(discover([undefined, 0] as never, { k: 2 }), { instanceOf: InvalidArgumentError, message: /items\[0\] must be an object/ });
  const crops = [{ image: image(), mask: new Tensor('uint8', [32, 32]) }];
  const model = await fit({ unlabelled: [...crops, ...crops] }, { k: 2, arch: { patchSize: 16, embedDim: 16, depth: 1, numHeads: 1, maskLayers: 1 }, epochs: 1, batchSize: 2, threads: 1, projHidden: 16, projOut: 8, nHead: 1 });
  try {
    await t.throwsAsync(model.predict(crops, null as never), { instanceOf: InvalidArgumentError, message: /options must be an object/ });
  } finally {
    model.dispose();
  }
});
