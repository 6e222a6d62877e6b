import test from 'ava';

// Serial: a concurrent test building inputs in JS would itself stall the event loop being measured.
import { AbortError, binarize, extractRegions, generateSynthetic, Tensor } from 'anomalyncd';

function bigMaps(n: number, size: number): Tensor<'uint8'>[] {
  return Array.from({ length: n }, (_, k) => {
    const d = new Uint8Array(size * size);
    for (let i = 0; i < d.length; i++) d[i] = (i * 2654435761 + k * 97) % 251;
    return new Tensor('uint8', [size, size], d);
  });
}

test.serial('heavy work runs off the main thread: the event loop keeps ticking', async (t) => {
  const maps = bigMaps(24, 512);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const started = performance.now();
  await binarize(maps, { oracle: true, threads: 1, returnBinary: false });
  const elapsed = performance.now() - started;
  clearInterval(timer);
  t.true(elapsed > 100, `work took ${elapsed} ms`);
  t.true(ticks >= elapsed / 5 / 4, `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
});

test.serial('an AbortSignal cancels native work promptly with an AbortError', async (t) => {
  const maps = bigMaps(200, 512);
  const controller = new AbortController();
  const started = performance.now();
  const promise = binarize(maps, { oracle: true, threads: 1, signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await t.throwsAsync(promise, { instanceOf: AbortError });
  t.true(performance.now() - started < 2000, 'cancelled well before the whole batch');
  const pre = new AbortController();
  pre.abort();
  await t.throwsAsync(binarize(maps, { signal: pre.signal }), { instanceOf: AbortError });
});

test.serial('progress is reported per item and a throwing listener does not break the job', async (t) => {
  const samples = generateSynthetic({ perType: 2, good: 1, size: 96, mapSize: 48 });
  const seen: number[] = [];
  const r = await extractRegions(
    samples.map((s) => s.image),
    samples.map((s) => s.map),
    {
      threads: 2,
      onProgress: (p) => {
        seen.push(p.done);
        t.is(p.total, samples.length);
        t.is(p.stage, 'regions');
        throw new Error('listener bug');
      },
    },
  );
  t.is(r.items.length, samples.length);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual([...seen].sort((a, b) => a - b), samples.map((_, i) => i + 1));
});

test.serial('inputs stay alive while native code reads them, and results are plain tensors', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  t.truthy(gc, 'run with --expose-gc');
  const pending = [];
  for (let i = 0; i < 8; i++) pending.push(binarize(bigMaps(6, 256), { threads: 1 }));
  for (let i = 0; i < 5; i++) gc!();
  const results = await Promise.all(pending);
  const reference = await binarize(bigMaps(6, 256), { threads: 1 });
  for (const r of results) t.deepEqual(r.maps.map((m) => m.threshold), reference.maps.map((m) => m.threshold));
  const bin = results[0]!.maps[0]!.binary!;
  t.true(bin instanceof Tensor && bin.data instanceof Uint8Array && bin.data.length === 256 * 256);
});

test.serial('thread counts give identical results', async (t) => {
  const samples = generateSynthetic({ perType: 2, good: 1, size: 128, mapSize: 64, seed: 5 });
  const one = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const four = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 4 });
  t.deepEqual(four.items.map((i) => [i.threshold, i.boxes, i.crops.map((c) => c.score)]), one.items.map((i) => [i.threshold, i.boxes, i.crops.map((c) => c.score)]));
});
