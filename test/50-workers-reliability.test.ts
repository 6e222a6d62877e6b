// Worker-thread reliability (issue 10, item 1): the addons are context-aware, so several
// workers load backbones, embed, fit tiny models and binarise at the same time as the main
// thread (same bits everywhere); and a worker terminated while its native jobs run neither
// takes the process down nor leaks beyond a bound (binding/napi_util.cc: Job::OnWorkComplete,
// EnvLife). test/35-workers.test.ts covers the plain concurrent case.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { mulberry32 } from '../ts/core/random.js';
import { repoRoot, tempDir } from './helpers.js';

const INDEX = pathToFileURL(join(repoRoot, 'dist', 'ts', 'index.js')).href;

// One full round of native work, written so that the worker and the main thread run the
// same source (it uses nothing but `lib`). Returns plain numbers to compare.
const ROUND = `
async function round(lib) {
  const arch = { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 };
  const samples = lib.generateSynthetic({ perType: 2, good: 1, size: 64, mapSize: 48, seed: 3 });
  const mebin = await lib.binarize(samples.map((s) => s.map), { threads: 1 });
  const { items } = await lib.extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const crops = items.flatMap((it) => it.crops.map((c) => ({ image: c.image, mask: c.mask, score: c.score })));
  const backbone = await lib.loadBackbone(null, { arch: { ...arch, imageSize: 224 }, seed: 7 });
  const features = await backbone.embedCrops(crops, { threads: 1 });
  const model = await lib.fit({ unlabelled: crops }, { k: 2, backbone, epochs: 1, batchSize: 4, lr: 0.01, seed: 11, threads: 1,
    nHead: 1, gradFromBlock: 1, projHidden: 16, projOut: 8 });
  const prediction = await model.predict(crops, { threads: 1 });
  model.dispose();
  backbone.dispose();
  return {
    thresholds: mebin.maps.map((m) => m.threshold),
    crops: crops.length,
    features: Array.from(features.data),
    probabilities: prediction.probabilities.flatMap((p) => Array.from(p)),
  };
}
`;

const WORKER = `
import { parentPort, workerData } from 'node:worker_threads';
const lib = await import(workerData.index);
${ROUND}
if (workerData.forever) {
  // Terminated from outside at a random moment: keep native jobs of every kind in flight.
  for (let i = 0; ; i++) { await round(lib); parentPort.postMessage({ round: i }); }
} else {
  parentPort.postMessage(await round(lib));
}
`;

type RoundResult = { thresholds: number[]; crops: number; features: number[]; probabilities: number[] };

function workerFile(): string {
  const file = join(tempDir(), 'worker.mjs');
  writeFileSync(file, WORKER);
  return file;
}

function runWorker(file: string): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(file, { workerData: { index: INDEX, forever: false } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
  });
}

async function roundOnMain(): Promise<RoundResult> {
  const lib = await import('anomalyncd');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('lib', `${ROUND}; return round(lib);`) as (l: typeof lib) => Promise<RoundResult>;
  return make(lib);
}

test.serial('four workers load backbones, embed, fit tiny models and binarise at once, with the main thread, identical results', async (t) => {
  const file = workerFile();
  const [results, main] = await Promise.all([Promise.all([0, 1, 2, 3].map(() => runWorker(file))), roundOnMain()]);
  t.true(main.crops >= 4, `${main.crops} crops`);
  t.is(main.features.length, main.crops * 32);
  t.true(main.features.every(Number.isFinite));
  t.is(main.probabilities.length, main.crops * 2);
  for (const r of results) t.deepEqual(r, main, 'a worker computes the same bits as the main thread');
});

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

test.serial('workers terminated mid-job at random moments: the process survives, the main thread still works, memory stays bounded', async (t) => {
  const file = workerFile();
  const rand = mulberry32(2026);
  const rounds = 12;
  const rss: number[] = [];
  let exits = 0;
  for (let i = 0; i < rounds; i++) {
    // Two at a time, so terminations also meet jobs of another environment in flight.
    const workers = [0, 1].map(() => new Worker(file, { workerData: { index: INDEX, forever: true } }));
    const errors: unknown[] = [];
    for (const w of workers) w.on('error', (e) => errors.push(e));
    // Wait until the first worker has finished one round (the addons are loaded and jobs
    // keep running), then terminate both after a random delay inside the next round.
    await new Promise((r) => workers[0]!.once('message', r));
    await new Promise((r) => setTimeout(r, Math.floor(rand() * 400)));
    const codes = await Promise.all(workers.map((w) => w.terminate()));
    exits += codes.length;
    t.deepEqual(errors, [], 'termination is not reported as a worker error');
    (globalThis as { gc?: () => void }).gc?.();
    rss.push(rssMiB());
  }
  t.is(exits, rounds * 2);
  // The main thread's addons still work after all that.
  const main = await roundOnMain();
  const again = await runWorker(file);
  t.deepEqual(again, main);
  // Leak bound: from the third round on (addons, libtorch and allocator pools warmed up),
  // RSS grows by less than 150 MiB over ten more terminated pairs (about 7 MiB per
  // terminated worker: per-environment V8 heaps are returned, native results dropped).
  const growth = rss[rss.length - 1]! - rss[2]!;
  t.log(`RSS per round (MiB): ${rss.map((v) => v.toFixed(0)).join(' ')}; growth after round 3: ${growth.toFixed(1)} MiB`);
  t.true(growth < 150, `RSS grew ${growth.toFixed(1)} MiB`);
});
