// The boundary property fuzzer, run in its own process (a crash or a hang must
// not take the test runner with it):
//   node --expose-gc dist/test/fuzz/boundary-run.js SEED CALLS REPORT.json [DETACH_ROUNDS]
// Calls every exported function of the public API (ts/index.ts) with valid base
// arguments mutated at one or two nested positions by wrong values
// (test/fuzz/values.ts). Every outcome must be a result or an AnomalyNCDError
// with an ERR_ code; the caller's own exception thrown by a getter or Proxy trap
// (CallerBoom) may pass through unchanged. Anything else is recorded as a
// failure. Each call has a deadline (it is aborted first, then declared hung).
// The last call started is written to REPORT.json.last before the call, so a
// crash names it. Then DETACH_ROUNDS rounds of zero-copy jobs whose input
// buffers are transferred away (structuredClone with transfer, postMessage on a
// MessageChannel) and collected while the job runs: results must equal those of
// untouched inputs (no use-after-free).
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import * as lib from '../../ts/index.js';
import { AnomalyNCDError, Tensor } from '../../ts/index.js';
import { mulberry32 } from '../../ts/core/random.js';
import { formatNpy } from '../../ts/io/npy.js';
import { encodePng } from '../../ts/io/png.js';
import { CallerBoom, describe, mutate, pick, wrongValue, type Rng } from './values.js';

const [seedArg, callsArg, reportPath, detachArg] = process.argv.slice(2);
const seed = Number(seedArg ?? 1);
const calls = Number(callsArg ?? 200);
const detachRounds = Number(detachArg ?? 0);
const report = reportPath ?? join(tmpdir(), 'boundary-report.json');
const CALL_MS = Number(process.env.BOUNDARY_CALL_MS ?? 15_000);

const TINY = { patchSize: 8, embedDim: 16, depth: 2, numHeads: 2, maskLayers: 1, imageSize: 32 };
const FIT = { k: 2, arch: TINY, epochs: 1, batchSize: 4, lr: 0.01, seed: 3, threads: 1, nHead: 1, gradFromBlock: 1, projHidden: 16, projOut: 8 };

const gray = (h: number, w: number, f: (i: number) => number) => new Tensor('uint8', [h, w], new Uint8Array(h * w).map((_, i) => f(i)));
const rgb = (h: number, w: number, f: (i: number) => number) => new Tensor('uint8', [h, w, 3], new Uint8Array(h * w * 3).map((_, i) => f(i)));

const dir = mkdtempSync(join(tmpdir(), 'anomalyncd-boundary-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
// Relative paths the fuzzer makes up land in the scratch folder, not in the repository.
process.chdir(dir);

// Fixtures: small valid inputs of every kind.
const maps = [0, 1, 2].map((s) => gray(32, 32, (i) => ((i % 32) - 16) ** 2 + ((i >> 5) - 16 + s) ** 2 < 40 ? 220 : (i * 7) % 30));
const images = [0, 1, 2].map((s) => rgb(32, 32, (i) => (i * (13 + s)) % 251));
const crop = { image: rgb(24, 24, (i) => (i * 31) % 253), mask: gray(24, 24, (i) => (i % 5 === 0 ? 255 : 0)) };
const crops = Array.from({ length: 6 }, (_, c) => ({ image: rgb(24, 24, (i) => (i * (31 + c)) % 253), mask: gray(24, 24, (i) => ((i + c) % 5 === 0 ? 255 : 0)), score: 0.1 * c }));
const labelled = crops.slice(0, 4).map((c, i) => ({ image: c.image, mask: c.mask, label: i % 2 ? 'a' : 'b' }));
const mapPng = join(dir, 'map.png');
writeFileSync(mapPng, encodePng(32, 32, maps[0]!.data, 0, 8));
const imgPng = join(dir, 'img.png');
writeFileSync(imgPng, encodePng(32, 32, images[0]!.data, 2, 8));
const npyPath = join(dir, 'x.npy');
writeFileSync(npyPath, formatNpy(maps[1]!));
const csvPath = join(dir, 'm.csv');
writeFileSync(csvPath, `image,map,label\n${imgPng},${mapPng},a\n${imgPng},${npyPath},b\n`);
const backbone = await lib.loadBackbone(null, { arch: TINY, seed: 1 });
const model = await lib.fit({ unlabelled: crops, labelled }, FIT);
const bundle = join(dir, 'model.safetensors');
await model.save(bundle);
const prepro = await lib.preprocess([crop.image], [crop.mask]);
const synth = lib.generateSynthetic({ perType: 1, good: 0, size: 48, mapSize: 32, seed: 2 });
const feats = new Float32Array(40).map((_, i) => Math.sin(i * 1.7));

type Target = { name: string; weight: number; base: () => unknown[]; call: (args: unknown[]) => unknown };
// Each call's signal: aborted at the call's deadline, so a valid but slow call (say epochs: 2**31) settles as ERR_ABORTED.
let controller = new AbortController();
const opt = (o: Record<string, unknown> = {}) => ({ threads: 1, signal: controller.signal, ...o });
const targets: Target[] = [
  { name: 'Tensor', weight: 2, base: () => ['uint8', [2, 2], new Uint8Array(4)], call: (a) => new (Tensor as never as new (...x: unknown[]) => unknown)(...a) },
  { name: 'parseNpy', weight: 2, base: () => [formatNpy(maps[0]!), 'x'], call: (a) => (lib.parseNpy as (...x: unknown[]) => unknown)(...a) },
  { name: 'formatNpy', weight: 1, base: () => [maps[0]], call: (a) => (lib.formatNpy as (...x: unknown[]) => unknown)(...a) },
  { name: 'readNpy', weight: 1, base: () => [npyPath], call: (a) => (lib.readNpy as (...x: unknown[]) => unknown)(...a) },
  { name: 'writeNpy', weight: 1, base: () => [join(dir, 'w.npy'), maps[0]], call: (a) => (lib.writeNpy as (...x: unknown[]) => unknown)(...a) },
  { name: 'binarize', weight: 8, base: () => [[...maps], opt({ range: [0, 255] })], call: (a) => (lib.binarize as (...x: unknown[]) => unknown)(...a) },
  { name: 'binarize(paths)', weight: 2, base: () => [[mapPng, npyPath], opt()], call: (a) => (lib.binarize as (...x: unknown[]) => unknown)(...a) },
  { name: 'extractRegions', weight: 8, base: () => [[...images], [...maps], opt()], call: (a) => (lib.extractRegions as (...x: unknown[]) => unknown)(...a) },
  { name: 'extractRegions(files)', weight: 2, base: () => [[imgPng], [mapPng], opt({ cropDir: join(dir, 'crops'), names: ['a'] })], call: (a) => (lib.extractRegions as (...x: unknown[]) => unknown)(...a) },
  { name: 'generateSynthetic', weight: 2, base: () => [{ perType: 1, good: 0, size: 32, mapSize: 32, seed: 1 }], call: (a) => (lib.generateSynthetic as (...x: unknown[]) => unknown)(...a) },
  { name: 'nativeVersions', weight: 1, base: () => [], call: (a) => (lib.nativeVersions as (...x: unknown[]) => unknown)(...a) },
  { name: 'loadBackbone', weight: 3, base: () => [null, { arch: TINY, seed: 1, signal: controller.signal }], call: (a) => (lib.loadBackbone as (...x: unknown[]) => unknown)(...a) },
  { name: 'Backbone.embed', weight: 5, base: () => [prepro.images, prepro.masks, opt()], call: (a) => (backbone.embed as (...x: unknown[]) => unknown).apply(backbone, a) },
  { name: 'Backbone.embedCrops', weight: 5, base: () => [[crop, crop], opt()], call: (a) => (backbone.embedCrops as (...x: unknown[]) => unknown).apply(backbone, a) },
  { name: 'preprocess', weight: 4, base: () => [[crop.image], [crop.mask], opt()], call: (a) => (lib.preprocess as (...x: unknown[]) => unknown)(...a) },
  { name: 'evaluate', weight: 2, base: () => [['a', 'b', 'a'], [0, 1, 0]], call: (a) => (lib.evaluate as (...x: unknown[]) => unknown)(...a) },
  { name: 'kmeans', weight: 2, base: () => [feats, 10, 4, 2, { seed: 1 }], call: (a) => (lib.kmeans as (...x: unknown[]) => unknown)(...a) },
  { name: 'silhouette', weight: 2, base: () => [feats, 10, 4, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]], call: (a) => (lib.silhouette as (...x: unknown[]) => unknown)(...a) },
  { name: 'estimateK', weight: 2, base: () => [feats, 10, 4, { kRange: [2, 3], seed: 1 }], call: (a) => (lib.estimateK as (...x: unknown[]) => unknown)(...a) },
  { name: 'mergeRegions', weight: 2, base: () => [[{ probabilities: [0.2, 0.8], maskArea: 10 }, { probabilities: [0.6, 0.4], maskArea: 3 }], 50], call: (a) => (lib.mergeRegions as (...x: unknown[]) => unknown)(...a) },
  { name: 'fit', weight: 2, base: () => [{ unlabelled: crops, labelled }, { ...FIT, signal: controller.signal }], call: (a) => (lib.fit as (...x: unknown[]) => unknown)(...a) },
  { name: 'TrainedModel.predict', weight: 5, base: () => [[...crops], opt({ embeddings: true })], call: (a) => (model.predict as (...x: unknown[]) => unknown).apply(model, a) },
  { name: 'TrainedModel.save', weight: 1, base: () => [join(dir, 'saved.safetensors'), { signal: controller.signal }], call: (a) => (model.save as (...x: unknown[]) => unknown).apply(model, a) },
  { name: 'loadTrainedModel', weight: 2, base: () => [bundle, { signal: controller.signal }], call: (a) => (lib.loadTrainedModel as (...x: unknown[]) => unknown)(...a) },
  { name: 'readCropFiles', weight: 1, base: () => [[imgPng], [mapPng], opt()], call: (a) => (lib.readCropFiles as (...x: unknown[]) => unknown)(...a) },
  { name: 'loadLabelledManifest', weight: 1, base: () => [csvPath, opt()], call: (a) => (lib.loadLabelledManifest as (...x: unknown[]) => unknown)(...a) },
  { name: 'loadLabelledFolder', weight: 1, base: () => [dir, opt()], call: (a) => (lib.loadLabelledFolder as (...x: unknown[]) => unknown)(...a) },
  { name: 'loadLabelled', weight: 1, base: () => [csvPath, opt()], call: (a) => (lib.loadLabelled as (...x: unknown[]) => unknown)(...a) },
  { name: 'loadDataset', weight: 2, base: () => [{ kind: 'manifest', path: csvPath }], call: (a) => (lib.loadDataset as (...x: unknown[]) => unknown)(...a) },
  { name: 'predict', weight: 3, base: () => [model, [...images], [...maps], opt()], call: (a) => (lib.predict as (...x: unknown[]) => unknown)(...a) },
  {
    name: 'discover',
    weight: 0.5,
    base: () => [synth.map((s) => ({ image: s.image, map: s.map, label: s.label, name: s.name })), { k: 2, arch: TINY, epochs: 1, threads: 1, training: { batchSize: 4 }, signal: controller.signal }],
    call: (a) => (lib.discover as (...x: unknown[]) => unknown)(...a),
  },
  { name: 'renderReport', weight: 1, base: () => [{}, {}], call: (a) => (lib.renderReport as (...x: unknown[]) => unknown)(...a) },
  { name: 'writeReport', weight: 1, base: () => [join(dir, 'r.html'), {}, {}], call: (a) => (lib.writeReport as (...x: unknown[]) => unknown)(...a) },
  { name: 'buildReportData', weight: 1, base: () => [{}, {}], call: (a) => (lib.buildReportData as (...x: unknown[]) => unknown)(...a) },
];

export type Verdict = 'result' | 'typed' | 'caller' | 'untyped' | 'hang';
const counts: Record<string, Record<Verdict, number>> = {};
const slow: string[] = [];
const failures: { target: string; verdict: Verdict; error: string; args: string }[] = [];
const errorCodes: Record<string, number> = {};

function verdictOf(e: unknown): Verdict {
  if (e instanceof CallerBoom) return 'caller';
  if (e instanceof AnomalyNCDError && typeof e.code === 'string' && e.code.startsWith('ERR_')) {
    errorCodes[e.code] = (errorCodes[e.code] ?? 0) + 1;
    return 'typed';
  }
  return 'untyped';
}

async function settle(value: unknown): Promise<Verdict> {
  if (!(value instanceof Promise)) return 'result';
  let timer: NodeJS.Timeout | undefined;
  // At the deadline the call's signal fires; a call still unsettled 10 s later hangs.
  const deadline = new Promise<Verdict>((res) => {
    timer = setTimeout(() => {
      slow.push(lastCall.slice(0, 200));
      controller.abort();
      timer = setTimeout(() => res('hang'), 10_000);
    }, CALL_MS);
  });
  try {
    return await Promise.race([value.then(() => 'result' as const, (e: unknown) => verdictOf(e)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function disposeResult(v: unknown): void {
  if (v && typeof v === 'object' && 'dispose' in v && typeof (v as { dispose: unknown }).dispose === 'function') (v as { dispose(): void }).dispose();
  if (v && typeof v === 'object' && 'model' in v) disposeResult((v as { model: unknown }).model);
}

// Valid but expensive calls are not what this test is after: an options object that lost its
// 'arch' (the default is a ViT-B/8, ~30 s to build here) gets the tiny one back, and one that
// lost its 'signal' gets the call's (so the deadline aborts it).
const OPTIONS_AT: Record<string, number> = { loadBackbone: 1, fit: 1, discover: 1 };
function cheapen(target: Target, args: unknown[]): void {
  const at = OPTIONS_AT[target.name];
  if (at !== undefined && args[0] === null && target.name === 'loadBackbone' && (args.length <= at || Array.isArray(args[at]) || args[at] === undefined))
    args[at] = { arch: TINY, signal: controller.signal };
  for (const [i, v] of args.entries()) {
    try {
      if (OPTIONS_AT[target.name] === i && v instanceof Tensor) args[i] = { ...v, arch: TINY, signal: controller.signal };
      if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Tensor || ArrayBuffer.isView(v) || Object.getPrototypeOf(v) !== Object.prototype) continue;
      const o = v as Record<string, unknown>;
      if (OPTIONS_AT[target.name] === i && !Object.hasOwn(o, 'arch')) o.arch = TINY;
      if (!Object.hasOwn(o, 'signal')) o.signal = controller.signal;
    } catch {
      // A throwing getter or Proxy: left as it is.
    }
  }
}

const totalWeight = targets.reduce((s, t) => s + t.weight, 0);
function chooseTarget(rng: Rng): Target {
  let r = rng() * totalWeight;
  for (const t of targets) if ((r -= t.weight) < 0) return t;
  return targets[targets.length - 1]!;
}

// A rejection nobody handles is a library bug (a floating promise): Node would exit on it.
let lastCall = '';
process.on('unhandledRejection', (e) => {
  failures.push({ target: 'unhandledRejection', verdict: 'untyped', error: `${(e as Error)?.name}: ${(e as Error)?.message} ${(e as Error)?.stack?.split('\n').slice(1, 6).join(' | ')}`, args: lastCall });
});

const started = performance.now();
const rng = mulberry32(seed);
let hung = false;
for (let c = 0; c < calls && !hung; c++) {
  const target = chooseTarget(rng);
  controller = new AbortController();
  let args: unknown[];
  const mode = rng();
  try {
    args = mode < 0.08 ? target.base() : mode < 0.16 ? Array.from({ length: Math.floor(rng() * 4) }, () => wrongValue(rng)) : mutate(rng, target.base());
  } catch {
    args = [pick(rng, [undefined, null, {}])];
  }
  cheapen(target, args);
  const described = `${target.name}(${args.map((a) => describe(a)).join(', ')})`;
  writeFileSync(report + '.last', described);
  lastCall = described;
  const counter = (counts[target.name] ??= { result: 0, typed: 0, caller: 0, untyped: 0, hang: 0 });
  let verdict: Verdict;
  let error = '';
  let value: unknown;
  try {
    value = target.call(args);
    if (value instanceof Promise) {
      value.then(disposeResult, (e: unknown) => {
        if (verdictOf(e) === 'untyped') error = `${(e as Error)?.name}: ${(e as Error)?.message}`;
      });
      verdict = await settle(value);
    } else {
      verdict = 'result';
      disposeResult(value);
    }
  } catch (e) {
    verdict = verdictOf(e);
    if (verdict === 'untyped') error = `${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  counter[verdict]++;
  if (verdict === 'untyped' || verdict === 'hang') {
    if (verdict === 'hang') hung = true;
    await new Promise((r) => setImmediate(r));
    failures.push({ target: target.name, verdict, error, args: described });
  }
}
const fuzzMs = performance.now() - started;

// ---------------------------------------------------------------------------
// Buffers transferred away while a zero-copy job reads them.

const detach: { job: string; how: string; rounds: number; mismatches: number; errors: string[] }[] = [];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
async function transferAway(buffer: ArrayBuffer, how: string): Promise<void> {
  if (how === 'structuredClone') {
    let clone: ArrayBuffer | undefined = structuredClone(buffer, { transfer: [buffer] });
    clone = undefined;
    void clone;
  } else {
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(buffer, [buffer]);
    port1.close();
    port2.close();
  }
  if (buffer.byteLength !== 0) throw new Error(`${how} did not detach the buffer`);
  gc();
  gc();
}

if (detachRounds > 0) {
  const big = (seed2: number) => new Tensor('float32', [512, 512], new Float32Array(512 * 512).map((_, i) => (((i * 2654435761 + seed2) >>> 0) % 1000) / 1000));
  const bigImage = () => rgb(512, 512, (i) => (i * 17) % 256);
  const jobs: { name: string; run: (detachNow: (b: ArrayBuffer) => Promise<void>) => Promise<string> }[] = [
    {
      name: 'binarize',
      run: async (d) => {
        const m = big(7);
        const p = lib.binarize([m], { threads: 1, range: [0, 255] });
        await d(m.data.buffer as ArrayBuffer);
        const r = await p;
        return JSON.stringify(r.maps.map((x) => [x.threshold, x.count, Array.from(x.binary!.data.subarray(0, 4096))]));
      },
    },
    {
      name: 'extractRegions',
      run: async (d) => {
        const im = bigImage();
        const m = big(9);
        const p = lib.extractRegions([im], [m], { threads: 1 });
        await d(im.data.buffer as ArrayBuffer);
        await d(m.data.buffer as ArrayBuffer);
        const r = await p;
        return JSON.stringify(r.items.map((it) => [it.threshold, it.boxes, it.crops.map((c) => Array.from(c.image!.data.subarray(0, 512)))]));
      },
    },
    {
      name: 'Backbone.embed',
      run: async (d) => {
        const imgs = new Tensor('float32', [8, 3, 32, 32], new Float32Array(8 * 3 * 32 * 32).map((_, i) => Math.sin(i)));
        const p = backbone.embed(imgs, undefined, { threads: 1 });
        await d(imgs.data.buffer as ArrayBuffer);
        return JSON.stringify(Array.from((await p).data));
      },
    },
    {
      name: 'TrainedModel.predict',
      run: async (d) => {
        const cs = crops.map((c) => ({ image: new Tensor('uint8', c.image.shape, c.image.data.slice()), mask: new Tensor('uint8', c.mask.shape, c.mask.data.slice()) }));
        const p = model.predict(cs, { threads: 1 });
        for (const c of cs) await d(c.image.data.buffer as ArrayBuffer);
        return JSON.stringify((await p).probabilities);
      },
    },
  ];
  const junk: Float32Array[] = [];
  for (const job of jobs) {
    const reference = await job.run(async () => {});
    for (const how of ['structuredClone', 'postMessage']) {
      const entry = { job: job.name, how, rounds: 0, mismatches: 0, errors: [] as string[] };
      detach.push(entry);
      for (let r = 0; r < detachRounds; r++) {
        writeFileSync(report + '.last', `detach ${job.name} ${how} round ${r}`);
        try {
          const got = await job.run(async (b) => {
            await transferAway(b, how);
            // Reuse the freed memory if the job still pointed into it.
            for (let j = 0; j < 8; j++) junk.push(new Float32Array(512 * 512).fill(-7));
            junk.splice(0, junk.length - 16);
          });
          if (got !== reference) entry.mismatches++;
        } catch (e) {
          entry.errors.push(`${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
        entry.rounds++;
      }
    }
  }
}

backbone.dispose();
model.dispose();
writeFileSync(
  report,
  JSON.stringify({ seed, slow, calls: Object.values(counts).reduce((s, c) => s + c.result + c.typed + c.caller + c.untyped + c.hang, 0), fuzzMs, counts, errorCodes, failures, detach }, null, 1),
);
process.exit(0);
