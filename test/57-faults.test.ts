// Faults (issue 10 item 6): a full disk while writing outputs and a bundle (a small
// tmpfs), a read-only output folder (a tmpfs remounted read-only: chmod does not stop
// root), files that vanish or are truncated between listing and reading, SIGKILL
// during `discover` (staging beside the output folder, swapped in whole, stale
// staging cleaned on the next run) and SIGINT during each CLI command (exit 130,
// staged outputs removed). Needs root (mount); CI runs as root.
//
// Order matters: every test that spawns a process runs before the one that runs
// libtorch jobs in this process (a fork while a libtorch job is inside OpenBLAS
// can hang OpenBLAS 0.3.21), and the tests run serially.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { AnomalyNCDError, IoError, binarize, fit, formatNpy, generateSynthetic, loadDataset, loadTrainedModel, Tensor } from 'anomalyncd';
import { cleanStaleStaging, stagingDir } from '../ts/io/files.js';
import { cliPath, encodePng, tempDir, writeDinoCheckpoint } from './helpers.js';

const mounts: string[] = [];
function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}
test.after.always(() => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
});

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const tree = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else out[r] = sha(join(d, e.name));
    }
  };
  walk(dir, '');
  return out;
};
const siblings = (out: string) => readdirSync(dirname(out)).filter((n) => n.startsWith(`${basename(out)}.`));

/** True `ms` after `cond` first holds. */
function delayedPid(cond: (pid: number) => boolean, ms: number): (stderr: string, pid: number) => boolean {
  let since = 0;
  return (_stderr, pid) => {
    if (!since && !cond(pid)) return false;
    since ||= Date.now();
    return Date.now() - since >= ms;
  };
}

/** Spawns the CLI; `when` decides when to send `signal` (polled every 20 ms). */
function cliUntil(args: string[], signal: NodeJS.Signals | undefined, when: (stderr: string, pid: number) => boolean, limitMs = 120_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; sent: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      if (signal && !sent && when(stderr, child.pid!)) {
        sent = true;
        child.kill(signal);
      }
    }, 20);
    const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('exit', (code, sig) => {
      clearInterval(poll);
      clearTimeout(limit);
      resolve({ code, signal: sig, stderr, sent });
    });
  });
}

/** `n` copies of one large map (and RGB image) PNG under `dir`, and a manifest of them. */
function bigInputs(dir: string, n: number, side: number): { maps: string; manifest: string } {
  const maps = join(dir, 'maps');
  mkdirSync(maps, { recursive: true });
  const px = new Uint8Array(side * side).map((_, i) => {
    const x = i % side, y = Math.floor(i / side);
    return (x - side / 3) ** 2 + (y - side / 2) ** 2 < (side / 8) ** 2 || (x - (2 * side) / 3) ** 2 + (y - side / 3) ** 2 < (side / 10) ** 2 ? 230 : (x * 7 + y * 3) % 40;
  });
  writeFileSync(join(maps, 'm000.png'), encodePng(side, side, px));
  writeFileSync(join(dir, 'img.png'), encodePng(side, side, Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * 13) % 256), 2));
  const rows = ['image,map'];
  for (let i = 0; i < n; i++) {
    if (i > 0) copyFileSync(join(maps, 'm000.png'), join(maps, `m${String(i).padStart(3, '0')}.png`));
    rows.push(`img.png,maps/m${String(i).padStart(3, '0')}.png`);
  }
  writeFileSync(join(dir, 'm.csv'), rows.join('\n') + '\n');
  return { maps, manifest: join(dir, 'm.csv') };
}

// ---------------------------------------------------------------------------
// Staging (no process spawned here)

test.serial('staging: beside the output folder, swapped in whole, unstaged entries kept, stale folders of dead processes cleaned', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'user file');
  writeFileSync(join(out, 'report.html'), 'old report');
  const s = await stagingDir(out);
  t.is(dirname(s.path), dir, 'staged beside, not inside');
  t.false(readdirSync(out).some((n) => n.startsWith('.staging')));
  writeFileSync(join(s.path, 'report.html'), 'new report');
  mkdirSync(join(s.path, 'crops'));
  writeFileSync(join(s.path, 'crops', 'a.png'), 'a');
  await s.commit();
  t.deepEqual(readdirSync(out).sort(), ['crops', 'keep.txt', 'report.html']);
  t.is(readFileSync(join(out, 'report.html'), 'utf8'), 'new report');
  t.deepEqual(siblings(out), []);

  // A killed process's leftovers: a staging folder, and an old folder renamed aside mid-swap.
  const dead = 999_999_999;
  mkdirSync(join(dir, `out.staging-${dead}-0badf00d`));
  writeFileSync(join(dir, `out.staging-${dead}-0badf00d`, 'half.json'), '{');
  const live = join(dir, `out.staging-${process.pid}-00c0ffee`);
  mkdirSync(live);
  await cleanStaleStaging(out);
  t.deepEqual(siblings(out).sort(), [basename(live)], "a dead process's staging is removed, a live one's kept");
  rmSync(live, { recursive: true });

  // Killed between the two renames: the output folder is missing, the old one beside it goes back.
  execFileSync('mv', [out, join(dir, `out.old-${dead}-deadbeef`)]);
  await cleanStaleStaging(out);
  t.deepEqual(readdirSync(out).sort(), ['crops', 'keep.txt', 'report.html']);
  // Killed while moving unstaged entries back: they are moved into the new folder.
  mkdirSync(join(dir, `out.old-${dead}-feedf00d`));
  writeFileSync(join(dir, `out.old-${dead}-feedf00d`, 'late.txt'), 'late');
  writeFileSync(join(dir, `out.old-${dead}-feedf00d`, 'report.html'), 'older');
  await cleanStaleStaging(out);
  t.deepEqual(readdirSync(out).sort(), ['crops', 'keep.txt', 'late.txt', 'report.html']);
  t.is(readFileSync(join(out, 'report.html'), 'utf8'), 'new report');
  t.deepEqual(siblings(out), []);

  const d = await stagingDir(out);
  await d.discard();
  t.deepEqual(siblings(out), []);
  const aborted = new AbortController();
  const a = await stagingDir(out, aborted.signal);
  writeFileSync(join(a.path, 'report.html'), 'aborted');
  aborted.abort();
  await t.throwsAsync(a.commit(), { code: 'ERR_ABORTED' });
  t.is(readFileSync(join(out, 'report.html'), 'utf8'), 'new report');
});

test.serial('files that vanish or are truncated between listing and reading give typed errors only', async (t) => {
  const dir = tempDir();
  const root = join(dir, 'mv', 'cat');
  const maps = join(dir, 'maps', 'cat');
  for (const d of [join(root, 'test', 'crack'), join(maps, 'crack')]) mkdirSync(d, { recursive: true });
  const npy = formatNpy(new Tensor('float32', [64, 64], new Float32Array(64 * 64).map((_, i) => (i % 64) / 64)));
  const png = encodePng(64, 64, new Uint8Array(64 * 64 * 3).fill(80), 2);
  const N = 12;
  for (let i = 0; i < N; i++) writeFileSync(join(root, 'test', 'crack', `${i}.png`), png);
  const restore = () => {
    for (let i = 0; i < N; i++) writeFileSync(join(maps, 'crack', `${i}.npy`), npy);
  };
  restore();
  let outcomes = { ok: 0, typed: 0 };
  const codes = new Set<string>();
  let stop = false;
  // A saboteur deleting and truncating map files while the loader lists and reads them.
  const saboteur = (async () => {
    let k = 0;
    while (!stop) {
      const f = join(maps, 'crack', `${k % N}.npy`);
      try {
        if (k % 3 === 0) unlinkSync(f);
        else truncateSync(f, k % 2 ? 20 : 100);
      } catch {
        // already gone
      }
      if (k % 7 === 6) restore();
      k++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let round = 0; round < 150; round++) {
    try {
      const ds = await loadDataset({ kind: 'mvtec', root: join(dir, 'mv'), category: 'cat', maps: join(dir, 'maps') });
      await binarize(ds.items.map((it) => it.map), { threads: 1 });
      outcomes.ok++;
    } catch (e) {
      t.true(e instanceof AnomalyNCDError, `untyped: ${(e as Error).stack}`);
      codes.add((e as AnomalyNCDError).code);
      outcomes.typed++;
    }
  }
  stop = true;
  await saboteur;
  t.true(outcomes.typed > 10, JSON.stringify(outcomes));
  t.true(codes.has('ERR_BAD_INPUT') || codes.has('ERR_IO'), [...codes].join());

  // The same for the native decoders: a PNG truncated, then removed, after listing.
  const list = join(dir, 'list');
  mkdirSync(list);
  const mapPng = encodePng(32, 32, new Uint8Array(1024).fill(100));
  writeFileSync(join(list, 'a.png'), mapPng);
  writeFileSync(join(list, 'b.png'), mapPng);
  const files = readdirSync(list).map((f) => join(list, f));
  truncateSync(files[0]!, 40);
  await t.throwsAsync(binarize(files, { threads: 1 }), { code: 'ERR_BAD_INPUT' });
  unlinkSync(files[0]!);
  await t.throwsAsync(binarize(files, { threads: 1 }), { instanceOf: IoError });
});

// ---------------------------------------------------------------------------
// Spawned CLI runs (before any libtorch job in this process)

test.serial('a full disk while `regions` writes: ERR_IO (exit 3), the previous outputs intact, nothing half-written left', async (t) => {
  const dir = tempDir();
  const small = bigInputs(join(dir, 'small'), 1, 96);
  const large = bigInputs(join(dir, 'large'), 40, 256);
  const disk = join(dir, 'disk');
  mountTmpfs(disk, '96k');
  const out = join(disk, 'out');
  const first = await cliUntil(['regions', '--manifest', small.manifest, '--out', out, '--threads', '1'], undefined, () => false);
  t.is(first.code, 0, first.stderr);
  const before = tree(out);
  t.true(Object.keys(before).length >= 2);
  const full = await cliUntil(['regions', '--manifest', large.manifest, '--out', out, '--threads', '1'], undefined, () => false);
  t.is(full.code, 3, full.stderr);
  t.regex(full.stderr, /ERR_IO/);
  t.regex(full.stderr, /ENOSPC|No space|space left/i);
  t.deepEqual(tree(out), before, 'the previous outputs are intact');
  t.deepEqual(siblings(out), [], 'no staging folder left');
});

test.serial('a read-only output folder: ERR_IO (exit 3) naming it, nothing written', async (t) => {
  const dir = tempDir();
  const inputs = bigInputs(join(dir, 'in'), 2, 64);
  const ro = join(dir, 'ro');
  mountTmpfs(ro, '1m');
  execFileSync('mount', ['-o', 'remount,ro', ro]);
  const a = await cliUntil(['mebin', '--maps', inputs.maps, '--out', join(ro, 'out.json'), '--threads', '1'], undefined, () => false);
  t.is(a.code, 3, a.stderr);
  t.regex(a.stderr, /ERR_IO.*out\.json.*(read-only|EROFS)/i);
  const b = await cliUntil(['regions', '--manifest', inputs.manifest, '--out', join(ro, 'regions'), '--threads', '1'], undefined, () => false);
  t.is(b.code, 3, b.stderr);
  t.regex(b.stderr, /ERR_IO.*regions.*(read-only|EROFS)/i);
  t.deepEqual(readdirSync(ro), []);
});

test.serial('SIGINT during mebin, regions, demo (discover), embed and train: exit 130, staged outputs removed', async (t) => {
  const dir = tempDir();
  const inputs = bigInputs(join(dir, 'in'), 60, 1024);
  const hasStaging = (out: string) => () => existsSync(dirname(out)) && siblings(out).some((n) => n.includes('.staging-'));
  const delayed = (cond: () => boolean, ms: number) => delayedPid(() => cond(), ms);

  const bin = join(dir, 'bin');
  const m = await cliUntil(['mebin', '--maps', inputs.maps, '--out', join(dir, 'mebin.json'), '--binary-out', bin, '--threads', '1'], 'SIGINT', delayed(hasStaging(bin), 100));
  t.true(m.sent, 'mebin was still running when SIGINT came');
  t.is(m.code, 130, m.stderr);
  t.false(existsSync(join(dir, 'mebin.json')));
  t.deepEqual(siblings(bin), []);

  const reg = join(dir, 'regions');
  const r = await cliUntil(['regions', '--manifest', inputs.manifest, '--out', reg, '--threads', '1'], 'SIGINT', delayed(hasStaging(reg), 100));
  t.true(r.sent);
  t.is(r.code, 130, r.stderr);
  t.false(existsSync(reg));
  t.deepEqual(siblings(reg), []);

  const demo = join(dir, 'demo');
  const d = await cliUntil(['demo', '--out', demo, '--per-type', '3', '--epochs', '200', '--threads', '1'], 'SIGINT', delayed(hasStaging(demo), 300));
  t.true(d.sent);
  t.is(d.code, 130, d.stderr);
  t.false(existsSync(demo));
  t.deepEqual(siblings(demo), []);

  const crops = join(dir, 'crops');
  const regionsRun = await cliUntil(['regions', '--manifest', bigInputs(join(dir, 'few'), 8, 128).manifest, '--out', crops, '--threads', '1'], undefined, () => false);
  t.is(regionsRun.code, 0, regionsRun.stderr);
  const bundle = join(dir, 'model.safetensors');
  const arch = JSON.stringify({ patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 });
  const tr = await cliUntil(['train', '--crops', crops, '--k', '2', '--out', bundle, '--arch', arch, '--epochs', '500', '--batch-size', '4', '--threads', '1'], 'SIGINT', (s) => /epoch 1\//.test(s));
  t.true(tr.sent);
  t.is(tr.code, 130, tr.stderr);
  t.false(existsSync(bundle));
  t.deepEqual(siblings(bundle), [], 'no temporary bundle left');

  // embed: SIGINT once the model addon is loaded in the child (the forward passes are running).
  const ckpt = join(dir, 'dino.pth');
  writeDinoCheckpoint(ckpt, { dim: 64, depth: 4, patch: 8, image: 224 });
  const x = join(dir, 'x.npy');
  writeFileSync(x, formatNpy(new Tensor('float32', [96, 3, 224, 224], new Float32Array(96 * 3 * 224 * 224).map((_, i) => Math.sin(i % 977)))));
  const y = join(dir, 'y.npy');
  const modelLoaded = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('anomalyncd_model.node');
    } catch {
      return false;
    }
  };
  const e = await cliUntil(['embed', '--checkpoint', ckpt, '--arch', JSON.stringify({ patchSize: 8, embedDim: 64, depth: 4, numHeads: 2, maskLayers: 1 }), '--images', x, '--out', y, '--threads', '1', '--batch-size', '2'], 'SIGINT', delayedPid(modelLoaded, 300));
  t.true(e.sent);
  t.is(e.code, 130, e.stderr);
  t.false(existsSync(y));
});

test.serial('SIGKILL during discover: the output folder keeps the previous run, a rerun cleans up and completes', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'demo');
  mkdirSync(out);
  writeFileSync(join(out, 'predictions.json'), '{"previous": true}\n');
  writeFileSync(join(out, 'notes.txt'), 'a user file');
  const before = tree(out);
  const killed = await cliUntil(['demo', '--out', out, '--per-type', '3', '--epochs', '200', '--threads', '1'], 'SIGKILL', delayedPid(() => siblings(out).some((n) => n.includes('.staging-')), 500));
  t.true(killed.sent);
  t.is(killed.signal, 'SIGKILL');
  t.deepEqual(tree(out), before, 'nothing half-written where outputs go');
  t.true(siblings(out).some((n) => n.includes('.staging-')), "the dead process's staging folder is left beside");
  const rerun = await cliUntil(['demo', '--out', out, '--per-type', '2', '--epochs', '1', '--threads', '1', '--json'], undefined, () => false);
  t.is(rerun.code, 0, rerun.stderr);
  t.deepEqual(siblings(out), [], 'stale staging cleaned');
  t.deepEqual(readdirSync(out).sort(), ['metrics.json', 'model.safetensors', 'notes.txt', 'predictions.json', 'report.html', 'timings.json']);
  t.not(readFileSync(join(out, 'predictions.json'), 'utf8'), '{"previous": true}\n');
});

// ---------------------------------------------------------------------------
// In-process libtorch (last: nothing is spawned after this but the unmounts)

test.serial('a full disk while saving a bundle: ERR_IO, the previous bundle intact and loadable, no temporary file left', async (t) => {
  const dir = tempDir();
  const samples = generateSynthetic({ perType: 2, good: 0, size: 64, mapSize: 64, seed: 4 });
  const crops = samples.map((s) => ({ image: s.image, mask: s.mask }));
  const model = await fit({ unlabelled: crops }, { k: 2, arch: { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 }, epochs: 1, batchSize: 4, threads: 1, projHidden: 32, projOut: 16, nHead: 1 });
  try {
    const probe = join(dir, 'probe.safetensors');
    await model.save(probe);
    const size = statSync(probe).size;
    const disk = join(dir, 'disk');
    // Room for one bundle and a half: the first save fits, the second (a temp file beside the first) does not.
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((size * 1.5) / 4096) * 4096}`, 'tmpfs', disk]);
    mounts.push(disk);
    const path = join(disk, 'model.safetensors');
    await model.save(path);
    const good = sha(path);
    const err = await t.throwsAsync(model.save(path), { instanceOf: IoError });
    t.regex(err!.message, /model\.safetensors/);
    t.is(sha(path), good, 'the previous bundle is intact');
    t.deepEqual(readdirSync(disk), ['model.safetensors'], 'no temporary file left');
    const again = await loadTrainedModel(path);
    again.dispose();
  } finally {
    model.dispose();
  }
});
