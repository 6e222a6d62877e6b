// `device` through the API (issue 8): one resolver (cpp/common/device.h), typed errors for
// an unmet CUDA request, 'auto' falling back to the CPU, and the device reported in results.
import test from 'ava';
import {
  binarize,
  DeviceError,
  extractRegions,
  fit,
  generateSynthetic,
  InvalidArgumentError,
  loadBackbone,
  loadTrainedModel,
  OutOfMemoryError,
  AnomalyNCDError,
  Tensor,
} from 'anomalyncd';
import { join } from 'node:path';
import { errorFromCode } from '../ts/core/errors.js';
import { coreAddon, modelAddon, testingAddon } from '../ts/native/loader.js';
import { tempDir } from './helpers.js';

const TINY = { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 };

test('ERR_DEVICE and ERR_OUT_OF_MEMORY are typed errors of the family', (t) => {
  const d = errorFromCode('ERR_DEVICE', 'no GPU');
  t.true(d instanceof DeviceError);
  t.true(d instanceof AnomalyNCDError);
  t.is(d.code, 'ERR_DEVICE');
  const m = errorFromCode('ERR_OUT_OF_MEMORY', 'CUDA out of memory');
  t.true(m instanceof OutOfMemoryError);
  t.is(m.code, 'ERR_OUT_OF_MEMORY');
});

test('the one resolver: auto, cpu, cuda, cuda:N against given capabilities', (t) => {
  const { resolveDevice } = testingAddon().kernels;
  const none = { cudaBuilt: false, deviceCount: 0 };
  const noGpu = { cudaBuilt: true, deviceCount: 0 };
  const two = { cudaBuilt: true, deviceCount: 2 };
  t.is(resolveDevice('auto', none), 'cpu');
  t.is(resolveDevice('auto', noGpu), 'cpu');
  t.is(resolveDevice('auto', two), 'cuda:0');
  t.is(resolveDevice('cpu', two), 'cpu');
  t.is(resolveDevice('cuda', two), 'cuda:0');
  t.is(resolveDevice('cuda:1', two), 'cuda:1');
  t.throws(() => resolveDevice('cuda', none), { instanceOf: DeviceError, message: /built without CUDA/ });
  t.throws(() => resolveDevice('cuda:0', noGpu), { instanceOf: DeviceError, message: /no CUDA device is present/ });
  t.throws(() => resolveDevice('cuda:2', two), { instanceOf: DeviceError, message: /index 2 is out of range \(2 devices present\)/ });
  for (const bad of ['gpu', 'cuda:', 'cuda:x', 'cuda0', 'CPU', ''])
    t.throws(() => resolveDevice(bad, two), { instanceOf: InvalidArgumentError }, bad);
});

test("TS checks the option's form before any work", async (t) => {
  const map = new Tensor('uint8', [8, 8], new Uint8Array(64).fill(7));
  for (const device of ['gpu', 'cuda:-1', 'cuda:a', 3])
    await t.throwsAsync(binarize([map], { device: device as never }), { instanceOf: InvalidArgumentError, message: /'device'/ });
  await t.throwsAsync(loadBackbone(null, { arch: TINY, device: 'tpu' as never }), { instanceOf: InvalidArgumentError, message: /'device'/ });
});

/** What this build can do, as the addons report it (the expectations follow from it). */
const modelCuda = () => modelAddon().torch!.cudaBuilt && modelAddon().torch!.cudaAvailable;

test("MEBin: 'auto' and 'cpu' run and report where; an unmet 'cuda' is a DeviceError naming why", async (t) => {
  const maps = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 48, seed: 3 }).map((s) => s.map);
  const cpu = await binarize(maps, { device: 'cpu', threads: 1 });
  t.is(cpu.device, 'cpu');
  const auto = await binarize(maps, { threads: 1 });
  // 'auto': the GPU only when the kernels are built and a device is present (identical results)
  t.true(auto.device === 'cpu' || auto.device === 'cuda:0', auto.device);
  t.deepEqual(auto.maps.map((m) => [m.threshold, m.count, m.sequence]), cpu.maps.map((m) => [m.threshold, m.count, m.sequence]));
  if (auto.device === 'cpu') {
    // no usable GPU for the kernels: an explicit CUDA request is refused, naming why
    const err = await t.throwsAsync(binarize(maps, { device: 'cuda' }), { instanceOf: DeviceError });
    t.regex(err!.message, /built without CUDA|no CUDA device is present/);
  }
  await t.throwsAsync(binarize(maps, { device: 'cuda:9999' }), { instanceOf: DeviceError });
  t.truthy(coreAddon());
});

test('extractRegions reports the device and refuses an unmet CUDA request', async (t) => {
  const s = generateSynthetic({ perType: 1, good: 0, size: 64, mapSize: 48, seed: 4 });
  const r = await extractRegions(s.map((x) => x.image), s.map((x) => x.map), { threads: 1, device: 'auto' });
  const c = await extractRegions(s.map((x) => x.image), s.map((x) => x.map), { threads: 1, device: 'cpu' });
  t.is(c.device, 'cpu');
  t.true(r.device === 'cpu' || r.device === 'cuda:0', r.device);
  t.deepEqual(r.items.map((it) => it.boxes), c.items.map((it) => it.boxes));
  t.true(r.items.some((it) => it.crops.length > 0));
  await t.throwsAsync(extractRegions(s.map((x) => x.image), s.map((x) => x.map), { device: 'cuda:9999' }), { instanceOf: DeviceError });
});

test('loadBackbone: auto -> where it can; a Backbone runs where it lives; cuda without CUDA -> DeviceError', async (t) => {
  const b = await loadBackbone(null, { arch: TINY, seed: 1 });
  t.is(b.device, modelCuda() ? 'cuda:0' : 'cpu');
  t.is(b.info.device, b.device);
  t.is(b.precision, 'fp32');
  const x = new Tensor('float32', [1, 3, 32, 32], new Float32Array(3 * 32 * 32).fill(0.5));
  const y = await b.embed(x, undefined, { threads: 1 });
  t.deepEqual(y.shape, [1, 32]);
  b.dispose();
  if (!modelCuda()) {
    const err = await t.throwsAsync(loadBackbone(null, { arch: TINY, device: 'cuda' }), { instanceOf: DeviceError });
    t.regex(err!.message, /libtorch.*built without CUDA|no CUDA device/);
    await t.throwsAsync(loadBackbone(null, { arch: TINY, device: 'cuda:3' }), { instanceOf: DeviceError });
  }
});

test('fit and loadTrainedModel: the device is resolved, used and reported', async (t) => {
  const samples = generateSynthetic({ perType: 1, good: 0, size: 96, mapSize: 64, seed: 5 });
  const { items } = await extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const unlabelled = items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  const options = { k: 2, arch: TINY, epochs: 1, batchSize: 4, seed: 2, threads: 1, nHead: 1, projHidden: 16, projOut: 8 };
  if (!modelCuda()) await t.throwsAsync(fit({ unlabelled }, { ...options, device: 'cuda' }), { instanceOf: DeviceError });
  const model = await fit({ unlabelled }, { ...options, device: 'cpu' });
  t.is(model.device, 'cpu');
  const p = await model.predict(unlabelled.slice(0, 2), { threads: 1 });
  t.is(p.probabilities.length, 2);
  const path = join(tempDir(), 'm.safetensors');
  await model.save(path);
  model.dispose();
  const back = await loadTrainedModel(path, { device: 'auto' });
  t.is(back.device, modelCuda() ? 'cuda:0' : 'cpu');
  back.dispose();
  if (!modelCuda()) await t.throwsAsync(loadTrainedModel(path, { device: 'cuda:0' }), { instanceOf: DeviceError });
});
