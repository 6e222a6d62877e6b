// The addons are context-aware: each worker thread's environment keeps its own class
// references and error factory. Two workers loading backbones at once used to crash the
// process (a process-global Backbone class reference used from another environment).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { repoRoot, tempDir } from './helpers.js';

const WORKER = `
import { parentPort, workerData } from 'node:worker_threads';
const lib = await import(workerData.index);
const arch = { patchSize: 8, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1, imageSize: 32 };
const backbone = await lib.loadBackbone(null, { arch, seed: 7 });
const crop = { image: new lib.Tensor('uint8', [20, 24, 3], new Uint8Array(20 * 24 * 3).map((_, i) => (i * 37) % 251)),
               mask: new lib.Tensor('uint8', [20, 24], new Uint8Array(20 * 24).map((_, i) => (i % 7 === 0 ? 255 : 0))) };
const features = await backbone.embedCrops([crop, crop], { threads: 1 });
backbone.dispose();
const map = new lib.Tensor('uint8', [16, 16], new Uint8Array(256).map((_, i) => (i % 16 > 8 ? 200 : 10)));
const mebin = await lib.binarize([map], { threads: 1, range: [0, 255] });
let typed = false;
try { await lib.binarize(['/nonexistent/anomalyncd-map.png'], { threads: 1 }); } catch (e) { typed = e instanceof lib.IoError && e.code === 'ERR_IO'; }
parentPort.postMessage({ features: Array.from(features.data), threshold: mebin.maps[0].threshold, typed });
`;

function runWorker(file: string): Promise<{ features: number[]; threshold: number; typed: boolean }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(file, { workerData: { index: pathToFileURL(join(repoRoot, 'dist', 'ts', 'index.js')).href } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
  });
}

test.serial('workers load backbones, embed and binarise at the same time as the main thread, with identical results', async (t) => {
  const file = join(tempDir(), 'worker.mjs');
  writeFileSync(file, WORKER);
  const onMain = async (): Promise<number[]> => {
    const lib = await import('anomalyncd');
    const backbone = await lib.loadBackbone(null, { arch: { patchSize: 8, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1, imageSize: 32 }, seed: 7 });
    const crop = {
      image: new lib.Tensor('uint8', [20, 24, 3], new Uint8Array(20 * 24 * 3).map((_, i) => (i * 37) % 251)),
      mask: new lib.Tensor('uint8', [20, 24], new Uint8Array(20 * 24).map((_, i) => (i % 7 === 0 ? 255 : 0))),
    };
    const features = await backbone.embedCrops([crop, crop], { threads: 1 });
    backbone.dispose();
    return Array.from(features.data);
  };
  const [results, mainFeatures] = await Promise.all([Promise.all([runWorker(file), runWorker(file), runWorker(file)]), onMain()]);
  t.deepEqual(mainFeatures, results[0]!.features);
  for (const r of results) {
    t.is(r.features.length, 64);
    t.true(r.features.every(Number.isFinite));
    t.deepEqual(r.features, results[0]!.features);
    t.is(r.threshold, results[0]!.threshold);
    t.true(r.typed, 'errors in a worker are the TS error family');
  }
});
