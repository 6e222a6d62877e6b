// Per-epoch bundles, exact resume after a kill, bundle validation, cancellation.
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AbortError, CheckpointError, fit, InvalidArgumentError, IoError, loadTrainedModel, type FitOptions, type TrainDataset } from 'anomalyncd';
import { repoRoot, tempDir, writeDinoCheckpoint } from './helpers.js';

const OPTIONS = {
  k: 4,
  arch: { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 },
  epochs: 4,
  batchSize: 8,
  lr: 0.01,
  seed: 11,
  threads: 1,
  nHead: 2,
  gradFromBlock: 1,
  projHidden: 64,
  projOut: 32,
} satisfies FitOptions;

/**
 * The dataset, built from the library only (its source is also run in a child
 * process, so it must not use anything but `lib`): synthetic images through
 * extractRegions; two defect types double as a labelled set.
 */
async function makeData(lib: typeof import('anomalyncd')): Promise<TrainDataset> {
  const samples = lib.generateSynthetic({ perType: 3, good: 2, size: 96, mapSize: 64, seed: 5 });
  const { items } = await lib.extractRegions(samples.map((s) => s.image), samples.map((s) => s.map), { threads: 1 });
  const unlabelled = items.flatMap((it) => it.crops.map((c) => ({ image: c.image!, mask: c.mask!, score: c.score })));
  const extra = lib.generateSynthetic({ perType: 2, good: 0, size: 96, mapSize: 64, seed: 9 }).filter((s) => s.label === 'scratch' || s.label === 'spot');
  const labelled = extra.map((s) => ({ image: s.image, mask: s.mask, label: s.label }));
  return { unlabelled, labelled };
}

/** safetensors: header JSON and the data section. */
function readBundle(path: string): { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>; data: Buffer } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n) };
}

function tensorsOf(path: string): Map<string, Buffer> {
  const { header, data } = readBundle(path);
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const [a, b] = (v as { data_offsets: [number, number] }).data_offsets;
    out.set(k, data.subarray(a, b));
  }
  return out;
}

function metadataOf(path: string): Record<string, string> {
  return readBundle(path).header['__metadata__'] as Record<string, string>;
}

const lossesOnly = (h: readonly { epoch: number; batches: number; skipped: number; lr: number; teacherTemp: number; losses: unknown }[]) =>
  h.map((e) => ({ epoch: e.epoch, batches: e.batches, skipped: e.skipped, lr: e.lr, teacherTemp: e.teacherTemp, losses: e.losses }));

test.serial('a run killed after epoch 1 resumes from its bundle and ends bit-identical to an uninterrupted run', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  t.true(data.unlabelled.length >= 14, `${data.unlabelled.length} crops`);
  const dir = tempDir();

  // Uninterrupted reference run.
  const full = await fit(data, OPTIONS);
  t.true(full.warnings.some((w) => /randomly initialised/.test(w)));
  t.is(full.history.length, 4);
  const fullPath = join(dir, 'full.safetensors');
  await full.save(fullPath);

  // The same run in a child process with a checkpoint directory, killed once epoch 1's bundle exists.
  const ckptDir = join(dir, 'ckpt');
  const ckpt = join(ckptDir, 'checkpoint.safetensors');
  const script = `
const lib = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'ts', 'index.js')).href)});
const makeData = ${makeData.toString()};
const data = await makeData(lib);
await lib.fit(data, { ...${JSON.stringify(OPTIONS)}, checkpointDir: process.argv[1] });
process.stdout.write('finished\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, ckptDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  let killedAt = -1;
  for (let i = 0; i < 120_000 / 5 && child.exitCode === null; i++) {
    if (existsSync(ckpt)) {
      const done = Number(metadataOf(ckpt)['anomalyncd.epochs_done']);
      if (done >= 1) {
        child.kill('SIGKILL');
        killedAt = done;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const code = await exited;
  t.true(killedAt >= 1 && killedAt < 4, `killed at epoch ${killedAt} (exit ${code}) ${stderr}`);
  const atKill = metadataOf(ckpt);
  t.is(atKill['anomalyncd.format_version'], '1');
  t.true([...tensorsOf(ckpt).keys()].some((k) => k.startsWith('momentum.')), 'resume bundle holds momentum buffers');

  // Resume in this process (a dead writer's temp file is removed, a live process's is not).
  writeFileSync(join(ckptDir, 'checkpoint.safetensors.tmp-999999999-0'), 'partial');
  writeFileSync(join(ckptDir, `checkpoint.safetensors.tmp-${process.pid}-77`), 'in progress');
  const resumed = await fit(data, { ...OPTIONS, checkpointDir: ckptDir });
  t.true(resumed.warnings.some((w) => new RegExp(`Resumed from .* after epoch ${Number(atKill['anomalyncd.epochs_done'])} of 4`).test(w)), resumed.warnings.join('; '));
  t.deepEqual(lossesOnly(resumed.history), lossesOnly(full.history));
  t.deepEqual(resumed.selectedHeads, full.selectedHeads);
  t.deepEqual(readdirSync(ckptDir).sort(), ['checkpoint.safetensors', `checkpoint.safetensors.tmp-${process.pid}-77`]);
  rmSync(join(ckptDir, `checkpoint.safetensors.tmp-${process.pid}-77`));
  const resumedPath = join(dir, 'resumed.safetensors');
  await resumed.save(resumedPath);
  const a = tensorsOf(fullPath), b = tensorsOf(resumedPath);
  t.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) t.true(v.equals(b.get(k)!), `tensor ${k} differs`);

  // The finished checkpoint is returned as is; another configuration is refused.
  const again = await fit(data, { ...OPTIONS, checkpointDir: ckptDir });
  t.is(again.epochsDone, 4);
  t.deepEqual(lossesOnly(again.history), lossesOnly(full.history));
  await t.throwsAsync(fit(data, { ...OPTIONS, seed: 12, checkpointDir: ckptDir }), { instanceOf: CheckpointError, message: /different run.*seed/ });
  for (const m of [full, resumed, again]) m.dispose();
});

test('bundles load back (predictions identical) and broken bundles are refused naming the file', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  const dir = tempDir();
  const model = await fit(data, { ...OPTIONS, epochs: 1 });
  const path = join(dir, 'model.safetensors');
  await model.save(path);
  const meta = metadataOf(path);
  t.is(meta['format'], 'pt');
  const cfg = JSON.parse(meta['anomalyncd.config']!);
  t.is(cfg.seed, '11');
  t.is(cfg.numNovel, 4);
  t.deepEqual(JSON.parse(meta['anomalyncd.class_names']!), ['scratch', 'spot', 'novel_0', 'novel_1', 'novel_2', 'novel_3']);
  t.deepEqual(JSON.parse(meta['anomalyncd.backbone']!), { path: null, sha256: null, stored: true });
  t.is(JSON.parse(meta['anomalyncd.epochs_done']!), 1);
  t.truthy(JSON.parse(meta['anomalyncd.preprocess']!).crop);
  t.false([...tensorsOf(path).keys()].some((k) => k.startsWith('momentum.')));
  t.true(tensorsOf(path).has('backbone.pos_embed'), 'random-init backbones are stored whole');

  const loaded = await loadTrainedModel(path);
  t.deepEqual(loaded.classNames, model.classNames);
  t.deepEqual(lossesOnly(loaded.history), lossesOnly(model.history));
  t.is(loaded.selectedHead, model.selectedHead);
  const crops = data.unlabelled.slice(0, 5);
  const p1 = await model.predict(crops, { threads: 1 });
  const p2 = await loaded.predict(crops, { threads: 1 });
  t.is(p1.probabilities.length, 5);
  t.deepEqual(p1.classNames, ['novel_0', 'novel_1', 'novel_2', 'novel_3']);
  for (let i = 0; i < 5; i++) {
    t.deepEqual(Array.from(p1.probabilities[i]!), Array.from(p2.probabilities[i]!));
    t.true(Math.abs(p1.probabilities[i]!.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  }
  const withEmb = await loaded.predict(crops.slice(0, 2), { embeddings: true, head: 1 });
  t.is(withEmb.head, 1);
  t.is(withEmb.embeddings![0]!.length, 32);

  // Truncated file.
  const truncated = join(dir, 'truncated.safetensors');
  writeFileSync(truncated, readFileSync(path).subarray(0, 5000));
  await t.throwsAsync(loadTrainedModel(truncated), { instanceOf: CheckpointError, message: /truncated\.safetensors/ });
  // Unsupported version.
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  header.__metadata__['anomalyncd.format_version'] = '99';
  // The header length counts UTF-8 bytes (the metadata holds non-ASCII text, e.g. '§'), padded to 8.
  const withHeader = (h: unknown): Buffer => {
    let bytes = Buffer.from(JSON.stringify(h));
    bytes = Buffer.concat([bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8, ' ')]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(bytes.length));
    return Buffer.concat([len, bytes, buf.subarray(8 + n)]);
  };
  const v99 = join(dir, 'v99.safetensors');
  writeFileSync(v99, withHeader(header));
  await t.throwsAsync(loadTrainedModel(v99), { instanceOf: CheckpointError, message: /v99\.safetensors.*version '99'/ });
  // A safetensors file that is not a bundle.
  delete header.__metadata__['anomalyncd.format_version'];
  const plain = join(dir, 'plain.safetensors');
  writeFileSync(plain, withHeader(header));
  await t.throwsAsync(loadTrainedModel(plain), { instanceOf: CheckpointError, message: /plain\.safetensors.*not an anomalyncd training bundle/ });
  // A corrupt tensor table.
  const bad = join(dir, 'bad.safetensors');
  copyFileSync(path, bad);
  const bb = readFileSync(bad);
  writeFileSync(bad, bb.subarray(0, bb.length - 64));
  await t.throwsAsync(loadTrainedModel(bad), { instanceOf: CheckpointError, message: /bad\.safetensors/ });

  model.dispose();
  await t.throwsAsync(model.predict(crops), { instanceOf: InvalidArgumentError, message: /disposed/ });
  // A pending prediction keeps the weights alive past dispose().
  const pending = loaded.predict(crops, { threads: 1 });
  loaded.dispose();
  t.is((await pending).probabilities.length, 5);
});

test('fit validates its inputs and aborts between batches', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  await t.throwsAsync(fit(data, { ...OPTIONS, k: 0 }), { instanceOf: InvalidArgumentError, message: /'k'/ });
  await t.throwsAsync(fit({ unlabelled: [] }, OPTIONS), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(fit(data, { ...OPTIONS, arch: { ...OPTIONS.arch, numHeads: 3 } }), { instanceOf: InvalidArgumentError, message: /numHeads/ });
  await t.throwsAsync(fit(data, { ...OPTIONS, gradFromBlock: 5 }), { instanceOf: InvalidArgumentError, message: /gradFromBlock/ });
  await t.throwsAsync(fit(data, { ...OPTIONS, backbone: join(tempDir(), 'missing.pth') }), { message: /missing\.pth/ });
  const controller = new AbortController();
  let batches = 0;
  const started = performance.now();
  await t.throwsAsync(
    fit(data, {
      ...OPTIONS,
      epochs: 50,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'batch' && ++batches === 2) controller.abort();
      },
    }),
    { instanceOf: AbortError },
  );
  t.true(performance.now() - started < 30_000);
  t.true(batches >= 2);
});

test('training from a backbone checkpoint: recorded by path + SHA-256, not stored; reloading checks the hash', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  const dir = tempDir();
  const ckpt = join(dir, 'tiny_dino.pth');
  const makeCkpt = (seed: number, path: string) => writeDinoCheckpoint(path, { dim: 32, depth: 2, patch: 16, seed, head: true });
  makeCkpt(1, ckpt);
  const sha = createHash('sha256').update(readFileSync(ckpt)).digest('hex');
  const model = await fit(data, { ...OPTIONS, epochs: 1, backbone: ckpt });
  t.false(model.warnings.some((w) => /randomly initialised/.test(w)));
  t.deepEqual(model.backbone, { path: ckpt, sha256: sha });
  t.is(model.arch.embedDim, 32);
  const bundle = join(dir, 'model.safetensors');
  await model.save(bundle);
  const keys = [...tensorsOf(bundle).keys()];
  t.false(keys.includes('backbone.pos_embed'), 'frozen weights are referenced, not stored');
  t.true(keys.includes('backbone.blocks.1.attn.qkv.weight'));
  t.false(keys.includes('backbone.blocks.0.attn.qkv.weight'));
  t.deepEqual(JSON.parse(metadataOf(bundle)['anomalyncd.backbone']!), { path: ckpt, sha256: sha, stored: false });
  const crops = data.unlabelled.slice(0, 4);
  const want = (await model.predict(crops, { threads: 1 })).probabilities.map((p) => Array.from(p));
  const loaded = await loadTrainedModel(bundle);
  t.deepEqual((await loaded.predict(crops, { threads: 1 })).probabilities.map((p) => Array.from(p)), want);
  loaded.dispose();
  // self-contained copy: loads without the checkpoint
  const selfContained = join(dir, 'self.safetensors');
  await model.save(selfContained, { selfContained: true });
  t.true(tensorsOf(selfContained).has('backbone.pos_embed'));

  // The checkpoint moved: refused, unless its new place is given.
  const moved = join(dir, 'moved.pth');
  renameSync(ckpt, moved);
  await t.throwsAsync(loadTrainedModel(bundle), { instanceOf: IoError, message: /tiny_dino\.pth/ });
  const relocated = await loadTrainedModel(bundle, { backbone: moved });
  t.deepEqual((await relocated.predict(crops, { threads: 1 })).probabilities.map((p) => Array.from(p)), want);
  relocated.dispose();
  const standalone = await loadTrainedModel(selfContained);
  t.deepEqual((await standalone.predict(crops, { threads: 1 })).probabilities.map((p) => Array.from(p)), want);
  standalone.dispose();
  // A different file at that place: the hash no longer matches.
  makeCkpt(2, ckpt);
  await t.throwsAsync(loadTrainedModel(bundle), { instanceOf: CheckpointError, message: /SHA-256/ });

  // Without `arch` the architecture is read from a DINO checkpoint (model::loadBackbone, as
  // every caller); width 32 is not one of DINO's, so `arch` is asked for.
  const small = { k: 2, backbone: moved, epochs: 1, threads: 1, projHidden: 16, projOut: 8, nHead: 1 };
  await t.throwsAsync(fit({ unlabelled: data.unlabelled.slice(0, 8) }, small), { instanceOf: InvalidArgumentError, message: /arch/ });
  const inferred = await fit({ unlabelled: data.unlabelled.slice(0, 8) }, { ...small, arch: OPTIONS.arch });
  t.like(inferred.arch, { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, imageSize: 224 });
  t.is(inferred.config.gradFromBlock, 1, 'default: the last block');
  inferred.dispose();
  model.dispose();
});

test('with a seed, runs are bit-reproducible for the same libtorch thread count, whatever the augmentation workers', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  const dir = tempDir();
  const options = { ...OPTIONS, epochs: 2, threads: 2 };
  const a = await fit(data, { ...options, augmentThreads: 1 });
  const b = await fit(data, { ...options, augmentThreads: 2 });
  t.deepEqual(lossesOnly(a.history), lossesOnly(b.history));
  await a.save(join(dir, 'a.safetensors'));
  await b.save(join(dir, 'b.safetensors'));
  const ta = tensorsOf(join(dir, 'a.safetensors')), tb = tensorsOf(join(dir, 'b.safetensors'));
  for (const [k, v] of ta) t.true(v.equals(tb.get(k)!), `tensor ${k} differs`);
  const c = await fit(data, { ...options, seed: 12 });
  t.notDeepEqual(lossesOnly(c.history), lossesOnly(a.history), 'another seed gives another run');
  for (const m of [a, b, c]) m.dispose();
});

test('fit refuses an unknown option and names the closest known one', async (t) => {
  const lib = await import('anomalyncd');
  const data = await makeData(lib);
  await t.throwsAsync(fit(data, { ...OPTIONS, epoch: 3 } as never), { instanceOf: InvalidArgumentError, message: /unknown option 'epoch' \(did you mean 'epochs'\?\)/ });
});
