// precision 'bf16' on the CPU (issue 8): ViT-S/16 and ViT-B/8 inference at batch 8 (mask-guided,
// 224², 2 threads): ours fp32, ours bf16 (autocast, cpp/model/device.h), PyTorch eager fp32 and eager bf16 (its own CPU autocast)
// (bench/embed_eager.py serve: the same DINO ViT + mask guidance as a plain nn.Module), same
// weights and inputs, in the same run; medians, ratios and the bf16 error, written to
// bench/RESULTS.md between the bf16-bench markers.
//
//   npx tsc -p tsconfig.json && node dist/bench/bf16.bench.js [--write] [--reps-s N] [--reps-b N] [--threads N] [--archs dino_vits16,dino_vitb8]
//
// The variants are interleaved (each rep runs the three in a rotating order), so background
// load (other agents share the 2 cores) hits them alike; the load average is recorded before
// and after. Ours runs in this process (one Backbone, precision per call), eager in a child
// Python server; both with 2 intra-op threads and OMP_WAIT_POLICY=PASSIVE (see embed.bench.ts).
// One untimed batch-1 forward per variant and model warms up allocators and oneDNN.
// Needs Debian's /usr/bin/python3 with python3-torch (or $EMBED_BENCH_PYTHON).
process.env['OMP_WAIT_POLICY'] ??= 'PASSIVE'; // before the addon (libgomp) loads
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadBackbone, nativeVersions, Tensor, type Backbone } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';
import { repoRoot, resultsPath, writeResultsSection } from './cli-args.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const PY = process.env['EMBED_BENCH_PYTHON'] ?? '/usr/bin/python3';
const PY_SCRIPT = join(repoRoot, 'bench', 'embed_eager.py');
const START = '<!-- bf16-bench:start -->';
const END = '<!-- bf16-bench:end -->';
const THREADS = arg('--threads', 2);
const BATCH = 8;
const IMG = 224;
type Arch = 'dino_vits16' | 'dino_vitb8';
const REPS: Record<Arch, number> = { dino_vits16: arg('--reps-s', 5), dino_vitb8: arg('--reps-b', 2) };
type Variant = 'ours fp32' | 'ours bf16' | 'eager fp32' | 'eager bf16';
const VARIANTS: Variant[] = ['ours fp32', 'ours bf16', 'eager fp32', 'eager bf16'];
const fileOf = (arch: Arch, v: Variant, w: string) => `${arch}-${w}-${v.replace(' ', '-')}.f32`;

/** max |a - b| over raw values and over per-row L2-normalised rows (what the cosine heads see). */
function errors(a: Float32Array, b: Float32Array, dim: number): { raw: number; unit: number } {
  let raw = 0, unit = 0;
  for (let r = 0; r < a.length / dim; r++) {
    let na = 0, nb = 0;
    for (let d = 0; d < dim; d++) {
      na += a[r * dim + d]! ** 2;
      nb += b[r * dim + d]! ** 2;
    }
    na = Math.sqrt(na) || 1;
    nb = Math.sqrt(nb) || 1;
    for (let d = 0; d < dim; d++) {
      raw = Math.max(raw, Math.abs(a[r * dim + d]! - b[r * dim + d]!));
      unit = Math.max(unit, Math.abs(a[r * dim + d]! / na - b[r * dim + d]! / nb));
    }
  }
  return { raw, unit };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const readF32 = (p: string) => {
  const b = readFileSync(p);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const log = (m: string) => process.stderr.write(`[bf16-bench] ${m}\n`);

/** The eager side: embed_eager.py serve, one JSON request per line. */
class Eager {
  #proc;
  #lines: AsyncIterableIterator<string>;
  constructor(dir: string) {
    this.#proc = spawn(PY, [PY_SCRIPT, 'serve', String(THREADS), dir, ''], {
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OPENBLAS_NUM_THREADS: String(THREADS) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }
  async next(): Promise<Record<string, unknown>> {
    const r = await this.#lines.next();
    if (r.done) throw new Error('eager server ended');
    const o = JSON.parse(r.value) as Record<string, unknown>;
    if (o['error']) throw new Error(String(o['error']));
    return o;
  }
  async request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.#proc.stdin!.write(JSON.stringify(cmd) + '\n');
    return this.next();
  }
  close(): void {
    this.#proc.stdin!.end(JSON.stringify({ cmd: 'quit' }) + '\n');
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'anomalyncd-bf16-'));
  try {
    log('preparing weights and inputs (embed_eager.py prepare)');
    const info = JSON.parse(execFileSync(PY, [PY_SCRIPT, 'prepare', dir], { encoding: 'utf8', maxBuffer: 1 << 24 })) as { torch: string };
    const images = readF32(join(dir, 'images.f32'));
    const masks = readF32(join(dir, 'masks.f32'));
    const input = (b: number) => ({
      x: new Tensor('float32', [b, 3, IMG, IMG], images.slice(0, b * 3 * IMG * IMG)),
      m: new Tensor('float32', [b, 1, IMG, IMG], masks.slice(0, b * IMG * IMG)),
    });
    const eager = new Eager(dir);
    await eager.next(); // ready
    const versions = nativeVersions();
    const bf16Dot = modelAddon().torch?.cpuBf16Dot ?? false;
    type Err = { raw: number; unit: number };
    type ErrRow = { weights: string; outAbsMax: number; ours: Err; eagerBf16: Err; eagerFp32: Err };
    const rows: { arch: Arch; ms: Record<Variant, number[]>; errs: ErrRow[] }[] = [];
    const archsArg = argv.indexOf('--archs');
    const archs = (archsArg >= 0 ? argv[archsArg + 1]!.split(',') : ['dino_vits16', 'dino_vitb8']) as Arch[];
    for (const arch of archs) {
      log(`${arch}: loading`);
      let bb: Backbone = await loadBackbone(join(dir, `${arch}.pth`), { arch, device: 'cpu' });
      await eager.request({ cmd: 'load', arch });
      const one = input(1);
      const eightIn = input(BATCH);
      const run = async (v: Variant, b: number, out?: string): Promise<number> => {
        const { x, m } = b === 1 ? one : eightIn;
        if (v.startsWith('eager')) {
          const r = await eager.request({ arch, batch: b, bf16: v === 'eager bf16', ...(out ? { out } : {}) });
          return r['wallMs'] as number;
        }
        const w0 = performance.now();
        const y = await bb.embed(x, m, { threads: THREADS, batchSize: b, precision: v === 'ours bf16' ? 'bf16' : 'fp32' });
        const ms = performance.now() - w0;
        if (out) writeFileSync(out, y.data);
        return ms;
      };
      for (const v of VARIANTS) await run(v, 1); // warm-up
      const ms: Record<Variant, number[]> = { 'ours fp32': [], 'ours bf16': [], 'eager fp32': [], 'eager bf16': [] };
      for (let rep = 0; rep < REPS[arch]; rep++) {
        for (let j = 0; j < VARIANTS.length; j++) {
          const v = VARIANTS[(rep + j) % VARIANTS.length]!;
          const out = rep === 0 ? join(dir, fileOf(arch, v, 'lively')) : undefined;
          ms[v].push(await run(v, BATCH, out));
          log(`${arch} rep ${rep + 1}/${REPS[arch]} ${v}: ${ms[v].at(-1)!.toFixed(0)} ms (load ${loadavg()[0]!.toFixed(1)})`);
        }
      }
      // the errors: on the timed (lively) weights, and on DINO's init-scale weights (one
      // untimed batch-8 forward per variant), each against ours fp32 on the same weights
      bb.dispose();
      bb = await loadBackbone(join(dir, `${arch}-init.pth`), { arch, device: 'cpu' });
      await eager.request({ cmd: 'load', arch, weights: 'init' });
      for (const v of VARIANTS) await run(v, BATCH, join(dir, fileOf(arch, v, 'init')));
      const errs: ErrRow[] = ['lively', 'init'].map((w) => {
        const ref = readF32(join(dir, fileOf(arch, 'ours fp32', w)));
        const dim = ref.length / BATCH;
        const vs = (v: Variant) => errors(readF32(join(dir, fileOf(arch, v, w))), ref, dim);
        return { weights: w, outAbsMax: ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0), ours: vs('ours bf16'), eagerBf16: vs('eager bf16'), eagerFp32: vs('eager fp32') };
      });
      rows.push({ arch, ms, errs });
      bb.dispose();
    }
    eager.close();
    const load1 = loadavg();
    const wallS = (performance.now() - t0) / 1000;
    const name = { dino_vits16: 'ViT-S/16', dino_vitb8: 'ViT-B/8' } as const;
    const lines = [
      START,
      '## bf16 on the CPU: ours fp32 / ours bf16 / PyTorch eager fp32 and bf16 (issue 8)',
      '',
      `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores (bf16 dot products: ${bf16Dot ? 'yes, AVX512-BF16/AMX' : 'no'}); ` +
        `libtorch ${versions.libtorch ?? '?'} (ours) and python3-torch ${info.torch} (eager), ${THREADS} threads, OMP_WAIT_POLICY=PASSIVE. ` +
        `Date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Load average (1/5/15 min) before: ${load0.map((x) => x.toFixed(1)).join(' / ')}, ` +
        `after: ${load1.map((x) => x.toFixed(1)).join(' / ')} (other agents share the 2 cores). Whole run: ${wallS.toFixed(0)} s.`,
      '',
      `Batch ${BATCH}, 224², mask-guided (soft blob masks), random weights (embed_eager.py prepare). The four variants ` +
        'interleaved in a rotating order; one untimed batch-1 warm-up each. Medians of the reps shown. Target (issue 8): ours bf16 ' +
        '≥ 1.5× eager fp32.',
      '',
      '| model | reps | ours fp32 (ms) | ours bf16 (ms) | eager fp32 (ms) | eager bf16 (ms) | **ours bf16 vs eager fp32** | ours bf16 vs eager bf16 | ours bf16 vs ours fp32 | ours fp32 vs eager fp32 |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const f = median(r.ms['ours fp32']), b = median(r.ms['ours bf16']), e = median(r.ms['eager fp32']), eb = median(r.ms['eager bf16']);
        return `| ${name[r.arch]} | ${r.ms['ours fp32'].length} | ${f.toFixed(0)} | ${b.toFixed(0)} | ${e.toFixed(0)} | ${eb.toFixed(0)} | **${(e / b).toFixed(2)}×** | ${(eb / b).toFixed(2)}× | ${(f / b).toFixed(2)}× | ${(e / f).toFixed(2)}× |`;
      }),
      '',
      'Error of the batch-8 embeddings (final-normed [CLS]) against ours fp32 on the same weights: max |Δ| of the values ' +
        '(up to "max |y|"), and of the L2-normalised rows (what the cosine heads and k-means see). Two weight sets: "lively" ' +
        '(the timed one: qkv std 0.08, others 0.03, so attention is sharp and the check of equal outputs means something) and ' +
        '"init" (DINO\'s init scale, std 0.02 truncated, biases 0: what a randomly initialised backbone holds). Target: 2e-2.',
      '',
      '| model | weights | max \\|y\\| | ours bf16 max \\|Δ\\| | ours bf16, normalised | eager bf16 max \\|Δ\\| | eager bf16, normalised | eager fp32 max \\|Δ\\| |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.flatMap((r) =>
        r.errs.map((e) => `| ${name[r.arch]} | ${e.weights} | ${e.outAbsMax.toFixed(2)} | ${e.ours.raw.toExponential(1)} | ${e.ours.unit.toExponential(1)} | ${e.eagerBf16.raw.toExponential(1)} | ${e.eagerBf16.unit.toExponential(1)} | ${e.eagerFp32.raw.toExponential(1)} |`),
      ),
      '',
      'All timings (ms, in run order):',
      '',
      ...rows.map((r) => `- ${name[r.arch]}: ` + VARIANTS.map((v) => `${v} ${r.ms[v].map((x) => x.toFixed(0)).join(', ')}`).join('; ')),
      '',
      'bf16 is autocast around the ViT forward (`cpp/model/device.h` PrecisionScope: the patch embedding, qkv/proj and MLP ' +
        'matmuls in bfloat16 through oneDNN, weights kept float32; the residual stream, layer norms and the attention core ' +
        '(q k^T, softmax, @ v: fused, float32, autocast off) stay float32); the heads, losses and SGD of training stay float32. Reduced: batch 8 only, few reps (ViT-B/8 costs ~1 TFLOP per batch), to keep the run ' +
        'to minutes on the shared machine.',
      END,
    ];
    const section = lines.join('\n');
    process.stdout.write(section + '\n');
    if (argv.includes('--write')) {
      writeResultsSection('bf16-bench', section);
      log(`written to ${resultsPath}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
