// Embedding throughput of the mask-guided ViT (METHOD.md §4): `Backbone.embed()` against
// PyTorch eager (bench/embed_eager.py: the same DINO ViT + mask guidance as a plain
// nn.Module, q @ k^T, masked_fill of the [CLS] row, softmax, @ v, under torch.no_grad()),
// same weights, same inputs, same threads, measured in the same run; plus the effect of
// the loader's OpenBLAS core-type choice (ts/native.ts tuneOpenBlas).
//
//   npx tsc -p tsconfig.json && node dist/bench/embed.bench.js [--write] [--quick] [--budget S] [--omp-default]
//
// --write        replaces the section between the embed-bench markers in bench/RESULTS.md
// --quick        ViT-S/16 only, batch 1 and 8, one rep (a smoke run; never written)
// --budget S     wall-clock budget of the whole run in seconds (default 350): reps are cut,
//                down to one, and the cells that still do not fit are skipped (and said so)
// --omp-default  keep the inherited OpenMP wait policy (default: OMP_WAIT_POLICY=PASSIVE
//                in every child, see the section's notes)
//
// Needs Debian's /usr/bin/python3 with python3-torch (or $EMBED_BENCH_PYTHON).
//
// How it runs. embed_eager.py `prepare` draws the weights of ViT-S/16 and ViT-B/8 (fixed
// seed), saves them with torch.save(state_dict) and writes 32 images (N(0,1), i.e.
// ImageNet-normalised scale) and 32 soft blob masks (~30 % anomalous area) as raw float32.
// For each thread count t, two servers run side by side, each with OPENBLAS_NUM_THREADS=t:
// this script in `--serve-ours` mode (loadBackbone(path, {arch}) on the saved weights) and
// embed_eager.py `serve` (torch.set_num_threads(t), load_state_dict of the same file, and
// OPENBLAS_CORETYPE set to what our loader chose). They idle between requests; the
// orchestrator sends one forward at a time, alternating the two sides (and which goes
// first), so background load hits both alike. Each side times its own forward (ours:
// around `await embed()`, which includes crossing into the worker; eager: around
// `model(x, m)`); a warm-up call precedes the timed ones. A control phase repeats two cells
// with glibc malloc keeping freed memory in both processes (MALLOC_ENV), which separates
// page-fault costs from compute. One eager forward per model is profiled by op, and the
// OpenBLAS settings are compared in fresh children. The whole run is kept within the budget
// (6 minutes on the 2-core machine; ViT-B/8 batch 32 is not run, see PLAN).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadBackbone, nativeVersions, Tensor, type Backbone } from 'anomalyncd';
import { blasCoretype } from '../ts/native/loader.js';
import { repoRoot, resultsPath, writeResultsSection } from './cli-args.js';

// ---------------------------------------------------------------------------------------
// Configuration

const argv = process.argv.slice(2);
const SELF = fileURLToPath(import.meta.url);
const PY = process.env['EMBED_BENCH_PYTHON'] ?? '/usr/bin/python3';
const PY_SCRIPT = join(repoRoot, 'bench', 'embed_eager.py');
const IMG = 224;

type Arch = 'dino_vits16' | 'dino_vitb8';
const ARCH_LABEL: Record<Arch, string> = { dino_vits16: 'ViT-S/16', dino_vitb8: 'ViT-B/8' };

/** Multiply-accumulates of one 224² forward (patch conv + 12 blocks; LayerNorm, softmax, GELU not counted). */
function gmacPerImage(arch: Arch): number {
  const [p, d] = arch === 'dino_vits16' ? [16, 384] : [8, 768];
  const n = (IMG / p) ** 2 + 1;
  const block = 12 * n * d * d + 2 * n * n * d; // qkv 3D², proj D², MLP 8D²; QKᵀ and AV
  return (12 * block + (n - 1) * 3 * p * p * d) / 1e9;
}

// ---------------------------------------------------------------------------------------
// Shared helpers

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

interface CallResult {
  wallMs: number;
  cpuMs: number;
  /** Minor page faults of the process during the call (fresh memory being mapped in). */
  minorFaults: number;
}

/** A child process answering one JSON line per JSON line sent. */
class Server {
  readonly name: string;
  readonly ready: Promise<Record<string, unknown>>;
  #proc: ChildProcess;
  #waiting: ((v: Record<string, unknown>) => void)[] = [];
  #failed: Error | undefined;
  #onFail: ((e: Error) => void)[] = [];

  constructor(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.#proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: this.#proc.stdout! });
    let readyResolve!: (v: Record<string, unknown>) => void;
    this.ready = new Promise((resolve, reject) => {
      readyResolve = resolve;
      this.#onFail.push(reject);
    });
    this.#waiting.push(readyResolve);
    lines.on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
        return;
      }
      this.#waiting.shift()?.(msg);
    });
    this.#proc.on('exit', (code, signal) => {
      if (this.#waiting.length === 0 && code === 0) return;
      this.#failed = new Error(`${name} exited (code ${code}, signal ${signal}) with ${this.#waiting.length} request(s) pending`);
      for (const f of this.#onFail) f(this.#failed);
    });
  }

  request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve);
      this.#onFail.push(reject);
      this.#proc.stdin!.write(JSON.stringify(cmd) + '\n');
    });
  }

  async call(arch: Arch, batch: number, out?: string): Promise<CallResult> {
    const r = await this.request({ arch, batch, ...(out ? { out } : {}) });
    if (typeof r['error'] === 'string') throw new Error(`${this.name}: ${r['error']}`);
    return { wallMs: r['wallMs'] as number, cpuMs: r['cpuMs'] as number, minorFaults: r['minorFaults'] as number };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#proc.exitCode !== null) return resolve();
      this.#proc.once('exit', () => resolve());
      this.#proc.stdin!.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    });
  }
}

/** The environment of a child: the parent's, with `set` applied (undefined = unset). */
function childEnv(set: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

// ---------------------------------------------------------------------------------------
// Server mode: our embed() behind the same line protocol as embed_eager.py serve

async function serveOurs(threads: number, dir: string, archs: Arch[]): Promise<void> {
  const all = readF32(join(dir, 'images.f32'));
  const allMasks = readF32(join(dir, 'masks.f32'));
  const backbones = new Map<Arch, Backbone>();
  const load = async (arch: Arch) => backbones.set(arch, await loadBackbone(join(dir, `${arch}.pth`), { arch }));
  for (const arch of archs) await load(arch);
  const inputs = new Map<number, { images: Tensor<'float32'>; masks: Tensor<'float32'> }>();
  const input = (b: number) => {
    let v = inputs.get(b);
    if (!v) {
      v = {
        images: new Tensor('float32', [b, 3, IMG, IMG], all.slice(0, b * 3 * IMG * IMG)),
        masks: new Tensor('float32', [b, 1, IMG, IMG], allMasks.slice(0, b * IMG * IMG)),
      };
      inputs.set(b, v);
    }
    return v;
  };
  const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  const versions = nativeVersions(); // loads the addon: the loader's OpenBLAS choice is made now
  send({ ready: true, threads, blasCoretype: blasCoretype.value ?? null, blasSource: blasCoretype.source, versions });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { cmd?: string; arch: Arch; batch: number; out?: string };
    if (cmd.cmd === 'quit') break;
    try {
      if (cmd.cmd === 'load') {
        const w0 = performance.now();
        await load(cmd.arch);
        send({ loadMs: performance.now() - w0 });
        continue;
      }
      const bb = backbones.get(cmd.arch);
      if (!bb) throw new Error(`arch ${cmd.arch} not loaded`);
      const { images, masks } = input(cmd.batch);
      const f0 = process.resourceUsage().minorPageFault;
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      const out = await bb.embed(images, masks, { threads, batchSize: cmd.batch });
      const wallMs = performance.now() - w0;
      const c = process.cpuUsage(c0);
      const minorFaults = process.resourceUsage().minorPageFault - f0;
      if (cmd.out) writeFileSync(cmd.out, out.data);
      send({ wallMs, cpuMs: (c.user + c.system) / 1000, minorFaults });
    } catch (e) {
      send({ error: (e as Error).message });
    }
  }
  for (const bb of backbones.values()) bb.dispose();
}

// ---------------------------------------------------------------------------------------
// Orchestrator

interface Cell {
  threads: number;
  arch: Arch;
  batch: number;
  /** Wanted timed reps per side (cut to fit the budget, at least 1). */
  reps: number;
  /** Not run by design (too long for this machine); listed as capped. */
  capped?: boolean;
  /** Run last in its phase, and only when every other cell can still get its wanted reps. */
  optional?: boolean;
  /** Control run: both processes with glibc malloc told to keep freed memory (MALLOC_ENV). */
  malloc?: boolean;
}

interface CellResult extends Cell {
  ours: CallResult[];
  eager: CallResult[];
  maxAbsDiff: number;
  warmedAtBatch: boolean;
}

interface Profile {
  arch: Arch;
  batch: number;
  threads: number;
  totalMs: number;
  ops: { name: string; ms: number; calls: number }[];
}

interface BlasResult {
  label: string;
  env: string;
  coretype: string;
  source: string;
  ours: CallResult[] | undefined;
  mm: { gflops: Record<string, { median: number; best: number }>; corename: string | null } | undefined;
}

const BLAS_VARIANTS: { label: string; set: Record<string, string | undefined>; env: string }[] = [
  {
    label: '(a) no tuning',
    set: { OPENBLAS_CORETYPE: undefined, ANOMALYNCD_BLAS_TUNE: '0' },
    env: 'OPENBLAS_CORETYPE unset, ANOMALYNCD_BLAS_TUNE=0 (OpenBLAS detects the core itself)',
  },
  {
    label: "(b) the loader's choice",
    set: { OPENBLAS_CORETYPE: undefined, ANOMALYNCD_BLAS_TUNE: undefined },
    env: 'OPENBLAS_CORETYPE unset, tuning on (the default)',
  },
  {
    label: '(c) Haswell by hand',
    set: { OPENBLAS_CORETYPE: 'Haswell', ANOMALYNCD_BLAS_TUNE: undefined },
    env: 'OPENBLAS_CORETYPE=Haswell (what this machine\'s environment sets)',
  },
];

const PLAN: Cell[] = [
  // order = run order: the long ViT-B/8 batch-8 call comes last and runs only if the budget allows
  { threads: 1, arch: 'dino_vits16', batch: 1, reps: 7 },
  { threads: 1, arch: 'dino_vits16', batch: 8, reps: 5 },
  { threads: 1, arch: 'dino_vits16', batch: 32, reps: 2 },
  { threads: 1, arch: 'dino_vitb8', batch: 1, reps: 2 },
  { threads: 1, arch: 'dino_vitb8', batch: 8, reps: 1, capped: true },
  { threads: 1, arch: 'dino_vitb8', batch: 32, reps: 1, capped: true },
  // control: the cells where eager page-faults most, with glibc keeping freed memory in both processes
  { threads: 2, arch: 'dino_vits16', batch: 8, reps: 5, malloc: true },
  { threads: 2, arch: 'dino_vitb8', batch: 1, reps: 3, malloc: true },
  { threads: 2, arch: 'dino_vits16', batch: 1, reps: 7 },
  { threads: 2, arch: 'dino_vits16', batch: 8, reps: 5 },
  { threads: 2, arch: 'dino_vits16', batch: 32, reps: 2 },
  { threads: 2, arch: 'dino_vitb8', batch: 1, reps: 3 },
  { threads: 2, arch: 'dino_vitb8', batch: 8, reps: 1, optional: true },
  { threads: 2, arch: 'dino_vitb8', batch: 32, reps: 1, capped: true },
];
/** glibc malloc settings of the control phase: no trimming of the heap top, and a fixed mmap threshold
 * at its maximum (32 MiB; the default threshold adapts, and large freed chunks go back to the OS). */
const MALLOC_ENV = { MALLOC_TRIM_THRESHOLD_: '8589934592', MALLOC_MMAP_THRESHOLD_: '33554432' };
const phaseKey = (c: Cell) => `${c.threads}${c.malloc ? 'm' : ''}`;
/** An optional cell is run only when this many times its estimate is left. */
const OPTIONAL_SAFETY = 1;
/** Prior cost (s) of one ViT-B/8 batch-8 pair (ours + eager) at 2 threads on the 2-core EPYC. */
const B8_BATCH8_PAIR_S = 115;
/** Seconds to start a pair of servers (node + libtorch, python + torch), before any model load. */
const SERVER_START_S = 12;
const QUICK_PLAN: Cell[] = [
  { threads: 2, arch: 'dino_vits16', batch: 1, reps: 1 },
  { threads: 2, arch: 'dino_vits16', batch: 8, reps: 1 },
  { threads: 1, arch: 'dino_vits16', batch: 8, reps: 1 },
];

interface Opts {
  write: boolean;
  quick: boolean;
  budgetS: number;
  ompDefault: boolean;
}

async function orchestrate(opts: Opts): Promise<void> {
  const tStart = performance.now();
  const deadline = tStart + opts.budgetS * 1000;
  const left = () => (deadline - performance.now()) / 1000;
  const load0 = loadavg();
  const date = new Date().toISOString().slice(0, 10);
  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const cores = availableParallelism();
  const versions = nativeVersions();
  const openblasVersion = (() => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libopenblas0-pthread'], { encoding: 'utf8' }).trim() || 'unknown';
    } catch {
      return 'unknown';
    }
  })();
  const log = (s: string) => process.stderr.write(`[embed-bench ${((performance.now() - tStart) / 1000).toFixed(0).padStart(3)} s] ${s}\n`);
  const plan = opts.quick ? QUICK_PLAN : PLAN;
  // Reserved for the BLAS section (3 node children + 3 python sgemm runs).
  const blasReserveS = 40;
  // Environment common to every child: no global L2 override; optionally passive OpenMP waits.
  const base: Record<string, string | undefined> = { OPENBLAS_L2_SIZE: undefined, ...(opts.ompDefault ? {} : { OMP_WAIT_POLICY: 'PASSIVE' }) };

  const dir = mkdtempSync(join(tmpdir(), 'anomalyncd-embed-bench-'));
  const open: Server[] = [];
  try {
    log(`preparing weights and inputs in ${dir}`);
    const prep = JSON.parse(execFileSync(PY, [PY_SCRIPT, 'prepare', dir], { encoding: 'utf8', maxBuffer: 1 << 20 })) as Prep;

    // Seconds per image and call, learned as we go: key `${side}/${threads}/${arch}`.
    const rate = new Map<string, number>();
    const loadS = new Map<Arch, number>([['dino_vits16', 6], ['dino_vitb8', 15]]);
    const estPerImage = (side: 'ours' | 'eager', t: number, arch: Arch): number => {
      const direct = rate.get(`${side}/${t}/${arch}`);
      if (direct !== undefined) return direct;
      let best: number | undefined;
      for (const [k, v] of rate) {
        const [ks, kt, ka] = k.split('/') as ['ours' | 'eager', string, Arch];
        if (ks !== side) continue;
        // scale a known rate by MACs and threads (assume one thread is twice as slow)
        const est = ((v * gmacPerImage(arch)) / gmacPerImage(ka)) * (Number(kt) / t);
        best = best === undefined ? est : Math.max(best, est);
      }
      // before any measurement: ~0.15 s per ViT-S/16 image and side at 2 threads (the 2-core EPYC, loaded)
      return best ?? 0.15 * (gmacPerImage(arch) / gmacPerImage('dino_vits16')) * (2 / t);
    };
    const estPair = (t: number, arch: Arch, b: number) => {
      const linear = b * (estPerImage('ours', t, arch) + estPerImage('eager', t, arch));
      // Eager's ViT-B/8 cost grows much faster than the batch (its [B, 12, 785, 785] temporaries are
      // fresh, page-faulted allocations): on the 2-core EPYC a batch-8 pair took 115-120 s at 2 threads
      // where batch 1 suggested 25-45 s. That measurement is the floor of the estimate.
      return arch === 'dino_vitb8' && b >= 8 ? Math.max(linear, B8_BATCH8_PAIR_S * (b / 8) * (2 / t)) : linear;
    };
    const learn = (side: 'ours' | 'eager', t: number, arch: Arch, b: number, r: CallResult) => {
      const k = `${side}/${t}/${arch}`;
      const v = r.wallMs / 1000 / b;
      const old = rate.get(k);
      rate.set(k, old === undefined ? v : 0.5 * old + 0.5 * v);
    };

    const results: CellResult[] = [];
    const skipped: Cell[] = [];
    const capped = plan.filter((c) => c.capped);
    const cells = plan.filter((c) => !c.capped);
    const profile: Profile[] = [];
    const serverInfo: Record<string, Record<string, unknown>> = {};
    let flip = false;

    // Cost (s) of the non-optional cells after `cell` (one rep each, or their wanted reps), with
    // the model loads and server starts they still need.
    const restCost = (cell: Cell, pk: string, loaded: Set<Arch>, wanted: boolean) => {
      let sum = 0;
      const seen = new Set<string>();
      for (const c of cells.slice(cells.indexOf(cell) + 1)) {
        if (c.optional) continue;
        sum += estPair(c.threads, c.arch, c.batch) * (wanted ? c.reps : 1);
        const key = `${phaseKey(c)}/${c.arch}`;
        if (!seen.has(key) && !(phaseKey(c) === pk && loaded.has(c.arch))) sum += loadS.get(c.arch)!;
        if (phaseKey(c) !== pk && ![...seen].some((k) => k.startsWith(`${phaseKey(c)}/`))) sum += SERVER_START_S;
        seen.add(key);
      }
      return sum;
    };

    for (const pk of [...new Set(cells.map(phaseKey))]) {
      // non-optional cells first, optional ones (run only if everything else got its wanted reps) last
      const inPhase = cells.filter((c) => phaseKey(c) === pk);
      const phase = [...inPhase.filter((c) => !c.optional), ...inPhase.filter((c) => c.optional)];
      const first = phase[0]!;
      const t = first.threads;
      const malloc = first.malloc === true;
      if (left() - blasReserveS < SERVER_START_S + loadS.get(first.arch)! + 2 * estPair(t, first.arch, first.batch)) {
        skipped.push(...phase);
        continue;
      }
      log(`phase: ${t} thread(s)${malloc ? ', malloc keeping freed memory' : ''}: starting servers`);
      const env = { ...base, ...(malloc ? MALLOC_ENV : {}), OPENBLAS_NUM_THREADS: String(t), OPENBLAS_CORETYPE: undefined, ANOMALYNCD_BLAS_TUNE: undefined };
      const o = new Server(`ours/${t}t`, process.execPath, [SELF, '--serve-ours', String(t), dir, ''], childEnv(env));
      open.push(o);
      const oInfo = await o.ready;
      // the eager side gets the OpenBLAS core our loader chose, so both run the same kernels
      const core = (oInfo['blasCoretype'] as string | null) ?? undefined;
      const e = new Server(`eager/${t}t`, PY, [PY_SCRIPT, 'serve', String(t), dir, ''], childEnv({ ...env, OPENBLAS_CORETYPE: core }));
      open.push(e);
      const eInfo = await e.ready;
      serverInfo[`ours/${pk}`] = oInfo;
      serverInfo[`eager/${pk}`] = eInfo;
      const loaded = new Set<Arch>();
      const warmed = new Set<Arch>();
      let profiled = false;

      const runProfile = async () => {
        // one profiled eager forward per loaded model (same ATen kernels as ours, bar the attention core)
        profiled = true;
        if (t !== 2 || malloc) return;
        for (const [arch, b] of [['dino_vits16', 8], ['dino_vitb8', 1]] as [Arch, number][]) {
          const after = phase.find((c) => !c.optional && c.arch === arch) ?? first;
          if (!loaded.has(arch) || estPerImage('eager', t, arch) * b * 1.3 > left() - blasReserveS - restCost(after, pk, loaded, false)) continue;
          log(`eager op profile ${ARCH_LABEL[arch]} b${b}`);
          profile.push((await e.request({ cmd: 'profile', arch, batch: b })) as unknown as Profile);
        }
      };

      for (const cell of phase) {
        if ((cell.optional || (cell === phase[phase.length - 1] && phase.length > 1)) && !profiled) await runProfile();
        const { arch, batch: b } = cell;
        const loadCost = loaded.has(arch) ? 0 : loadS.get(arch)!;
        const warmCost = warmed.has(arch) ? 0 : estPair(t, arch, 1);
        const p = estPair(t, arch, b);
        const avail = left() - blasReserveS - loadCost - warmCost;
        const restMin = restCost(cell, pk, new Set([...loaded, arch]), false);
        const restWanted = restCost(cell, pk, new Set([...loaded, arch]), true);
        // (no skipping before the first measurement: the estimates are guesses until then)
        if (rate.size > 0 && (cell.optional ? OPTIONAL_SAFETY * p : p) > avail - (cell.optional ? restWanted : restMin)) {
          log(`skip ${cellLabel(cell)}: needs ~${(loadCost + warmCost + p).toFixed(0)} s, ${(avail + loadCost + warmCost - restMin).toFixed(0)} s to spare`);
          skipped.push(cell);
          continue;
        }
        if (!loaded.has(arch)) {
          const w0 = performance.now();
          await Promise.all([o.request({ cmd: 'load', arch }), e.request({ cmd: 'load', arch })]);
          loadS.set(arch, (performance.now() - w0) / 1000);
          loaded.add(arch);
        }
        if (!warmed.has(arch)) {
          // one untimed batch-1 call per server and model (thread pools, OpenBLAS buffers, allocator)
          learn('ours', t, arch, 1, await o.call(arch, 1));
          learn('eager', t, arch, 1, await e.call(arch, 1));
          warmed.add(arch);
        }
        // Reps: all wanted when everything after still gets its wanted reps; otherwise this cell
        // gets its share of the time beyond the later cells' minimum, in proportion to wanted cost.
        const pp = estPair(t, arch, b);
        const spare = left() - blasReserveS - restMin - pp;
        const share = (spare * cell.reps * pp) / (cell.reps * pp + Math.max(0, restWanted - restMin));
        const fitsAll = left() - blasReserveS - restWanted >= cell.reps * pp;
        const budgetForCell = fitsAll ? left() - blasReserveS - restWanted : pp + Math.max(0, share);
        const warmAtBatch = b > 1 && b <= 8 && arch === 'dino_vits16' && budgetForCell >= (cell.reps + 1) * pp;
        // (cheap cells always get their wanted reps: a few seconds in all)
        const reps = cell.reps * pp <= 6 ? cell.reps : Math.max(1, Math.min(cell.reps, Math.floor((budgetForCell - (warmAtBatch ? pp : 0)) / pp)));
        log(`${cellLabel(cell)}: ${reps} rep(s)${warmAtBatch ? ' after a warm-up at this batch' : ''} (~${pp.toFixed(1)} s per pair)`);
        if (warmAtBatch) {
          await o.call(arch, b);
          await e.call(arch, b);
        }
        const res: CellResult = { ...cell, reps, ours: [], eager: [], maxAbsDiff: NaN, warmedAtBatch: warmAtBatch };
        const fo = join(dir, 'out_ours.f32');
        const fe = join(dir, 'out_eager.f32');
        for (let r = 0; r < reps; r++) {
          const firstRep = r === 0;
          const calls: (() => Promise<void>)[] = [
            async () => {
              const x = await o.call(arch, b, firstRep ? fo : undefined);
              res.ours.push(x);
              learn('ours', t, arch, b, x);
            },
            async () => {
              const x = await e.call(arch, b, firstRep ? fe : undefined);
              res.eager.push(x);
              learn('eager', t, arch, b, x);
            },
          ];
          if (flip) calls.reverse();
          flip = !flip;
          for (const f of calls) await f();
          if (firstRep) {
            const x = readF32(fo);
            const y = readF32(fe);
            if (x.length !== y.length) throw new Error(`output sizes differ: ${x.length} vs ${y.length}`);
            let m = 0;
            for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k]! - y[k]!));
            res.maxAbsDiff = m;
          }
        }
        log(
          `  ours ${res.ours.map((x) => x.wallMs.toFixed(0)).join(' ')} ms, eager ${res.eager.map((x) => x.wallMs.toFixed(0)).join(' ')} ms, ` +
            `max|Δ| ${res.maxAbsDiff.toExponential(1)}`,
        );
        results.push(res);
      }
      if (!profiled) await runProfile();
      await Promise.all([o.close(), e.close()]);
      open.length = 0;
    }
    const load1 = loadavg();

    // BLAS section: our ViT-S/16 batch 8 (2 threads) in a child per setting, and raw sgemm in python.
    const blas: BlasResult[] = [];
    const blasSkipped: string[] = [];
    for (let i = 0; i < BLAS_VARIANTS.length; i++) {
      const v = BLAS_VARIANTS[i]!;
      const slot = left() / (BLAS_VARIANTS.length - i);
      if (slot < 6) {
        blasSkipped.push(v.label);
        continue;
      }
      const env = childEnv({ ...base, ...v.set, OPENBLAS_NUM_THREADS: '2' });
      log(`BLAS ${v.label} (${slot.toFixed(0)} s slot)`);
      const t0 = performance.now();
      const s = new Server(`ours-blas ${v.label}`, process.execPath, [SELF, '--serve-ours', '2', dir, 'dino_vits16'], env);
      open.push(s);
      const info = await s.ready;
      const coretype = (info['blasCoretype'] as string | null) ?? '';
      const source = info['blasSource'] as string;
      // python has no loader: give it the value ours ended up with, so both load the same kernels
      const pyEnv = source === 'auto' ? { ...env, OPENBLAS_CORETYPE: coretype } : env;
      const mm = JSON.parse(execFileSync(PY, [PY_SCRIPT, 'mm'], { env: pyEnv, encoding: 'utf8' })) as NonNullable<BlasResult['mm']>;
      const res: BlasResult = { label: v.label, env: v.env, coretype, source, ours: undefined, mm };
      const w = await s.call('dino_vits16', 1);
      const perCall = (w.wallMs / 1000) * 8;
      const reps = Math.max(1, Math.min(3, Math.floor((slot - (performance.now() - t0) / 1000) / perCall)));
      res.ours = [];
      for (let r = 0; r < reps; r++) res.ours.push(await s.call('dino_vits16', 8));
      await s.close();
      open.length = 0;
      blas.push(res);
    }
    const load2 = loadavg();
    const totalS = (performance.now() - tStart) / 1000;
    log(`done in ${totalS.toFixed(0)} s`);

    const section = renderSection({
      date, cpuModel, cores, versions, openblasVersion, prep, serverInfo, results, skipped, capped, blas, blasSkipped, profile,
      load0, load1, load2, totalS, budgetS: opts.budgetS, quick: opts.quick, ompDefault: opts.ompDefault,
    });
    process.stdout.write(section + '\n');
    if (opts.write) {
      if (opts.quick) log('--quick figures are not written (drop --quick to record)');
      else {
        writeResultsSection('embed-bench', section);
        log(`wrote ${resultsPath}`);
      }
    }
  } finally {
    await Promise.all(open.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Prep {
  weights: Record<Arch, { params: number }>;
  maskArea: number;
  pooled: Record<Arch, { patches: number; openMin: number; openMean: number; openMax: number }>;
  maskEffect: { maxAbs: number; meanAbs: number; outAbsMean: number };
  torch: string;
  python: string;
}

// ---------------------------------------------------------------------------------------
// Report

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function fmtK(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : n.toFixed(0);
}

function geoMean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

function cellLabel(c: Cell): string {
  return `${ARCH_LABEL[c.arch]} batch ${c.batch} at ${c.threads} thread${c.threads > 1 ? 's' : ''}`;
}

function renderSection(r: {
  date: string;
  cpuModel: string;
  cores: number;
  versions: { libtorch: string; opencv: string };
  openblasVersion: string;
  prep: Prep;
  serverInfo: Record<string, Record<string, unknown>>;
  results: CellResult[];
  skipped: Cell[];
  capped: Cell[];
  blas: BlasResult[];
  blasSkipped: string[];
  profile: Profile[];
  load0: number[];
  load1: number[];
  load2: number[];
  totalS: number;
  budgetS: number;
  quick: boolean;
  ompDefault: boolean;
}): string {
  const L: string[] = [];
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const loaded = Math.max(r.load0[0]!, r.load1[0]!, r.load2[0]!) > r.cores * 0.5;
  const o2 = r.serverInfo['ours/2'] ?? {};
  const e2 = r.serverInfo['eager/2'] ?? {};
  L.push('## Mask-guided ViT embedding throughput vs PyTorch eager (`bench/embed.bench.ts`)', '');
  if (r.quick) L.push('**--quick smoke run: one rep, ViT-S/16 only; not a measurement.**', '');
  L.push(
    `- Machine: ${r.cpuModel}, ${r.cores} cores; Node ${process.version}; ours: libtorch ${r.versions.libtorch} (Debian libtorch1.13); ` +
      `eager: python3-torch ${r.prep.torch} (Python ${r.prep.python}), the same Debian build, i.e. the same ATen kernels; ` +
      `OpenBLAS ${r.openblasVersion} (pthread variant) under both; ${r.date}.`,
  );
  L.push(
    `- Load average (1 / 5 / 15 min): ${la(r.load0)} before, ${la(r.load1)} after the comparison, ${la(r.load2)} at the end.` +
      (loaded
        ? ' **Taken under load**: other processes were competing for the two cores, so absolute times are inflated and vary from one ' +
          'call to the next. Ours and eager calls alternate (and alternate which goes first) so that the load hits both sides alike; ' +
          'read the ratios, and the best-call ratio next to the median one; cells with one rep are single samples.'
        : ''),
  );
  L.push(`- Whole run: ${r.totalS.toFixed(0)} s (budget ${r.budgetS} s: reps are cut to fit it, down to one; cells that still do not fit are skipped and listed).`);
  L.push(
    `- Weights: random (fixed seed, livelier than DINO's init so that attention is not uniform), drawn in python and saved with ` +
      `\`torch.save(state_dict)\`; ours loads that file with \`loadBackbone(path, {arch})\`. ViT-S/16: ${(r.prep.weights.dino_vits16.params / 1e6).toFixed(1)} M parameters, ` +
      `${gmacPerImage('dino_vits16').toFixed(2)} GMAC (${(2 * gmacPerImage('dino_vits16')).toFixed(1)} GFLOP) per 224² image; ViT-B/8: ` +
      `${(r.prep.weights.dino_vitb8.params / 1e6).toFixed(1)} M parameters, ${gmacPerImage('dino_vitb8').toFixed(1)} GMAC (${(2 * gmacPerImage('dino_vitb8')).toFixed(0)} GFLOP) ` +
      'per image (counting the matmuls and the patch convolution only).',
  );
  const ps = r.prep.pooled;
  L.push(
    `- Inputs (the same for both sides): images of N(0, 1) noise (the scale of ImageNet-normalised pixels), 224×224; soft blob masks ` +
      `(three random Gaussian bumps thresholded to ${(100 * r.prep.maskArea).toFixed(1)} % mean area, soft edge). Patches left open to the [CLS] ` +
      `query in the 9 guided blocks: ViT-S/16 ${(100 * ps.dino_vits16.openMin).toFixed(0)}–${(100 * ps.dino_vits16.openMax).toFixed(0)} % of ` +
      `${ps.dino_vits16.patches}, ViT-B/8 ${(100 * ps.dino_vitb8.openMin).toFixed(0)}–${(100 * ps.dino_vitb8.openMax).toFixed(0)} % of ` +
      `${ps.dino_vitb8.patches}. The guidance matters: with an all-open mask the ViT-S/16 embedding moves by up to ` +
      `${r.prep.maskEffect.maxAbs.toFixed(2)} (mean ${r.prep.maskEffect.meanAbs.toFixed(2)}; mean |value| ${r.prep.maskEffect.outAbsMean.toFixed(2)}).`,
  );
  L.push(
    `- Threads: t intra-op threads on each side (\`embed({threads: t})\` / \`torch.set_num_threads(t)\`) **and** \`OPENBLAS_NUM_THREADS=t\` ` +
      'in both processes: the pthread OpenBLAS keeps its own pool of one thread per core, which neither call resizes, so without the ' +
      'variable a "1-thread" run still does its GEMMs on 2 threads. ' +
      (r.ompDefault
        ? 'OpenMP wait policy: inherited (libgomp spins a while before sleeping).'
        : '`OMP_WAIT_POLICY=PASSIVE` in both: with libgomp\'s default spin-wait, idle OpenMP workers and the OpenBLAS threads fight for ' +
          'the two loaded cores and both sides slow down erratically (eager more, having more OpenMP regions); passive waits cost a ' +
          'futex wake per parallel region, small next to these forward times (`--omp-default` keeps the inherited policy).'),
  );
  L.push(
    `- OpenBLAS core: \`OPENBLAS_CORETYPE\` and \`OPENBLAS_L2_SIZE\` (both set globally on this machine) are unset for the comparison; ours ` +
      `gets its loader's choice (${String(o2['blasCoretype'] ?? 'none')}, source ${String(o2['blasSource'] ?? '?')}) and the eager process is ` +
      `given the same value (it reports core ${String(e2['corename'] ?? '?')}), so both run the same GEMM kernels.`,
  );
  L.push(
    '- Each figure: wall time of one forward of the whole batch (`batchSize` = batch), measured inside each process around the call ' +
      '(ours: `await embed()`, so the hop to the worker thread is included; eager: `model(x, m)` under `torch.no_grad()`); median over the ' +
      'timed reps, after an untimed batch-1 call per server (plus one at the batch size where the budget allowed: reps marked w). ' +
      'Images/s = batch / median. CPU = process CPU time per call, all threads. Page faults = minor page faults of the process during ' +
      'the call (memory freshly mapped in: large temporaries that the allocator returns to the OS and maps again on the next call).',
    '',
  );

  L.push('| model | threads | batch | reps | ours ms | eager ms | ours img/s | eager img/s | **ours / eager** | best-call ratio | CPU ms ours / eager | CPU ratio | page faults ours / eager | max \\|Δ\\| |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const ratios: number[] = [];
  const bestRatios: number[] = [];
  const cpuRatios: number[] = [];
  const order = (c: Cell) => (c.arch === 'dino_vits16' ? 0 : 1000) + (2 - c.threads) * 100 + c.batch;
  const main = r.results.filter((c) => !c.malloc);
  const control = r.results.filter((c) => c.malloc);
  const ratioOf = (c: CellResult) => median(c.eager.map((x) => x.wallMs)) / median(c.ours.map((x) => x.wallMs));
  for (const c of [...main].sort((x, y) => order(x) - order(y))) {
    const om = median(c.ours.map((x) => x.wallMs));
    const em = median(c.eager.map((x) => x.wallMs));
    const ob = Math.min(...c.ours.map((x) => x.wallMs));
    const eb = Math.min(...c.eager.map((x) => x.wallMs));
    const oc = median(c.ours.map((x) => x.cpuMs));
    const ec = median(c.eager.map((x) => x.cpuMs));
    ratios.push(em / om);
    bestRatios.push(eb / ob);
    cpuRatios.push(ec / oc);
    L.push(
      `| ${ARCH_LABEL[c.arch]} | ${c.threads} | ${c.batch} | ${c.reps}${c.warmedAtBatch ? ' w' : ''} | ${fmtMs(om)} | ${fmtMs(em)} | ` +
        `${((c.batch * 1000) / om).toFixed(2)} | ${((c.batch * 1000) / em).toFixed(2)} | **${(em / om).toFixed(2)}×** | ${(eb / ob).toFixed(2)}× | ` +
        `${fmtMs(oc)} / ${fmtMs(ec)} | ${(ec / oc).toFixed(2)}× | ${fmtK(median(c.ours.map((x) => x.minorFaults)))} / ` +
        `${fmtK(median(c.eager.map((x) => x.minorFaults)))} | ${c.maxAbsDiff.toExponential(1)} |`,
    );
  }
  L.push('');
  const notes: string[] = [];
  if (r.capped.length)
    notes.push(
      `Capped by design (not run): ${r.capped.map(cellLabel).join('; ')}. ViT-B/8 is ${(2 * gmacPerImage('dino_vitb8')).toFixed(0)} GFLOP per image, ` +
        'so one such call is minutes per side on two cores; it would not fit the 6-minute run.',
    );
  if (r.skipped.length)
    notes.push(`Skipped for the time budget in this run: ${r.skipped.map((c) => cellLabel(c) + (c.malloc ? ' (malloc control)' : '')).join('; ')}.`);
  if (notes.length) L.push(notes.join(' '), '');

  if (ratios.length) {
    const maxDiff = Math.max(...r.results.map((c) => c.maxAbsDiff));
    const geo = geoMean(ratios);
    if (control.length) {
      L.push('### Control: the same calls with glibc malloc keeping freed memory', '');
      L.push(
        `Both processes with \`${Object.entries(MALLOC_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}\` (no trimming of the heap top; a fixed ` +
          '32 MiB mmap threshold), 2 threads, otherwise as above. By default glibc hands large freed blocks back to the OS, so each call maps ' +
          'its big temporaries afresh and takes one page fault per 4 KiB; on this VM a fault is expensive.',
        '',
      );
      L.push('| model | threads | batch | reps | ours ms | eager ms | **ours / eager** | page faults ours / eager | same cell, default malloc |');
      L.push('|---|---|---|---|---|---|---|---|---|');
      for (const c of control) {
        const twin = main.find((m) => m.arch === c.arch && m.threads === c.threads && m.batch === c.batch);
        L.push(
          `| ${ARCH_LABEL[c.arch]} | ${c.threads} | ${c.batch} | ${c.reps}${c.warmedAtBatch ? ' w' : ''} | ${fmtMs(median(c.ours.map((x) => x.wallMs)))} | ` +
            `${fmtMs(median(c.eager.map((x) => x.wallMs)))} | **${ratioOf(c).toFixed(2)}×** | ${fmtK(median(c.ours.map((x) => x.minorFaults)))} / ` +
            `${fmtK(median(c.eager.map((x) => x.minorFaults)))} | ${twin ? `${ratioOf(twin).toFixed(2)}×` : '–'} |`,
        );
      }
      L.push('');
    }
    L.push('### Target', '');
    L.push(
      `- ≥ 1.5× PyTorch eager: **${geo < 1.5 ? 'not met' : ratios.every((x) => x >= 1.5) ? 'met' : 'met on average, not in every cell'}**: ` +
        `geometric mean of the median ratios **${geo.toFixed(2)}×** over ${ratios.length} cells ` +
        `(range ${Math.min(...ratios).toFixed(2)}×–${Math.max(...ratios).toFixed(2)}×; from best calls ${geoMean(bestRatios).toFixed(2)}×, ` +
        `range ${Math.min(...bestRatios).toFixed(2)}×–${Math.max(...bestRatios).toFixed(2)}×). ` +
        `Cells at or above 1.5×: ${ratios.filter((x) => x >= 1.5).length} of ${ratios.length}. In process CPU time (less sensitive to ` +
        `waiting for a core, but it counts OpenBLAS's yield-spinning) eager needs ${geoMean(cpuRatios).toFixed(2)}× ours ` +
        `(range ${Math.min(...cpuRatios).toFixed(2)}×–${Math.max(...cpuRatios).toFixed(2)}×).`,
    );
    if (control.length)
      L.push(
        `- Where the margin comes from: both sides run the same GEMM, softmax and GELU kernels; with glibc keeping freed memory the ` +
          `margin in the control cells is ${control.map((c) => `${ratioOf(c).toFixed(2)}× (${ARCH_LABEL[c.arch]} batch ${c.batch})`).join(', ')}. ` +
          'What the fused attention saves is mostly the freshly mapped [B, H, N, N] temporaries and their page faults, not arithmetic.',
      );
    const s8 = main.find((c) => c.arch === 'dino_vits16' && c.threads === 2 && c.batch === 8);
    const s32 = main.find((c) => c.arch === 'dino_vits16' && c.threads === 2 && c.batch === 32);
    if (s8 && s32) {
      const ips = (c: CellResult) => (c.batch * 1000) / median(c.ours.map((x) => x.wallMs));
      const pf = (c: CellResult) => fmtK(median(c.ours.map((x) => x.minorFaults)));
      L.push(
        `- Batch size and ours: ViT-S/16 at 2 threads runs ${ips(s8).toFixed(1)} img/s at batch 8 and ${ips(s32).toFixed(1)} img/s at batch 32 ` +
          `(${pf(s8)} vs ${pf(s32)} page faults per call)` +
          (ips(s32) < ips(s8)
            ? ': at batch 32 the [B·N, 4D] MLP activations exceed glibc\'s 32 MiB mmap ceiling and are mapped afresh in every block, ' +
              'so `embed()`\'s default `batchSize` of 32 is slower per image than 8 on this machine.'
            : '.'),
      );
    }
    L.push(
      `- Same embeddings on the same weights: **${maxDiff <= 1e-3 ? 'yes' : 'no'}**, max |Δ| ${maxDiff.toExponential(1)} over every cell's first call ` +
        '(tolerance 1e-3; both float32).',
      '',
    );
  }

  if (r.profile.length) {
    L.push('### Where the time goes (eager, `torch.autograd.profiler`, 2 threads, one forward)', '');
    L.push(
      'Ours runs the same ATen kernels for everything outside the attention core, which it fuses per image (one baddbmm into an [H, N, N] ' +
        'buffer, in-place fill of the [CLS] row and softmax, bmm written straight into the [B, N, C] output); eager builds [B, H, N, N] logits, ' +
        'copies q, k, v and the head-transposed result to contiguous memory, and writes the scaled logits, the filled row and the softmax as ' +
        'separate tensors. Self time per op as the profiler counts it (wall time on the calling thread, intra-op workers included); ' +
        '`aten::addmm` is every Linear (qkv, proj, fc1, fc2), `aten::bmm` the two attention products. A single profiled call: whether ' +
        'its temporaries fault in depends on what the allocator kept from earlier calls.',
      '',
    );
    L.push('| model | batch | forward ms | top ops: self ms (share) |');
    L.push('|---|---|---|---|');
    for (const p of r.profile) {
      const top = p.ops
        .slice(0, 8)
        .map((o) => `\`${o.name}\` ${fmtMs(o.ms)} (${((100 * o.ms) / p.totalMs).toFixed(0)} %)`)
        .join(', ');
      L.push(`| ${ARCH_LABEL[p.arch]} | ${p.batch} | ${fmtMs(p.totalMs)} | ${top} |`);
    }
    L.push('');
  }

  L.push('### OpenBLAS core type (ViT-S/16, batch 8, 2 threads; each setting in a fresh child process)', '');
  L.push(
    'OpenBLAS reads `OPENBLAS_CORETYPE` once, when it loads; the addon\'s loader (ts/native.ts `tuneOpenBlas`) sets it from /proc/cpuinfo ' +
      'when the user has not. `OPENBLAS_L2_SIZE` is unset in all three. "OpenBLAS core" is what `openblas_get_corename()` reports in a python ' +
      'child with the same environment plus, in (b), `OPENBLAS_CORETYPE` set to the loader\'s choice (python has no such loader); there, a raw ' +
      '2048² `torch.mm` (median of 5 after one warm-up, OpenBLAS threads set to match). Ours: median of the reps after a batch-1 warm-up.',
    '',
  );
  L.push('| setting | environment | our loader sets | OpenBLAS core | ours ms (batch 8) | ours img/s | reps | 2048² mm GFLOP/s, 2 threads | 1 thread |');
  L.push('|---|---|---|---|---|---|---|---|---|');
  for (const b of r.blas) {
    const om = b.ours?.length ? median(b.ours.map((x) => x.wallMs)) : NaN;
    const g2 = b.mm?.gflops['2'];
    const g1 = b.mm?.gflops['1'];
    L.push(
      `| ${b.label} | ${b.env} | ${b.source === 'auto' ? b.coretype : b.source === 'user' ? "nothing (keeps the user's value)" : 'nothing (off)'} | ${b.mm?.corename ?? '?'} | ${b.ours ? fmtMs(om) : '–'} | ` +
        `${b.ours ? ((8 * 1000) / om).toFixed(2) : '–'} | ${b.ours?.length ?? 0} | ` +
        `${g2 ? `${g2.median.toFixed(0)} (best ${g2.best.toFixed(0)})` : '–'} | ${g1 ? `${g1.median.toFixed(0)} (best ${g1.best.toFixed(0)})` : '–'} |`,
    );
  }
  L.push('');
  const [ba, bb, bc] = r.blas;
  if (ba?.ours?.length && bb?.ours?.length) {
    const m = (x: BlasResult) => median(x.ours!.map((y) => y.wallMs));
    const same = ba.mm?.corename !== null && ba.mm?.corename === bb.mm?.corename;
    L.push(
      (same
        ? `Here OpenBLAS detects the core correctly without help (${ba.mm?.corename}), so (a) and (b) run the same kernels; (a) took ` +
          `${(m(ba) / m(bb)).toFixed(2)}× the time of (b), which is run-to-run noise. The misdetection the loader guards against (a fallback to the SSE3 "Prescott" kernels) ` +
          'did not occur on this host.'
        : `The loader's choice makes our ViT-S/16 batch-8 embed **${(m(ba) / m(bb)).toFixed(2)}×** faster than the untuned default ` +
          `(${ba.mm?.corename ?? '?'} → ${bb.mm?.corename ?? '?'}).`) +
        (bc?.ours?.length ? ` Haswell by hand: ${(m(bc) / m(bb)).toFixed(2)}× the time of the loader's choice.` : ''),
    );
  }
  if (r.blasSkipped.length) L.push('', `Not run for the time budget: ${r.blasSkipped.join(', ')}.`);
  return L.join('\n');
}


// ---------------------------------------------------------------------------------------
// Entry

if (argv[0] === '--serve-ours') {
  await serveOurs(Number(argv[1]), argv[2]!, (argv[3] ?? '').split(',').filter(Boolean) as Arch[]);
} else {
  let write = false;
  let quick = false;
  let budgetS = 350;
  let ompDefault = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--write') write = true;
    else if (a === '--quick') quick = true;
    else if (a === '--omp-default') ompDefault = true;
    else if (a === '--budget') budgetS = Number(argv[++i]);
    else throw new Error(`Unknown argument ${a} (expected --write, --quick, --budget S, --omp-default)`);
  }
  if (!(budgetS > 0)) throw new Error('--budget needs a positive number of seconds');
  await orchestrate({ write, quick, budgetS, ompDefault });
}
