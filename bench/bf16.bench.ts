// precision 'bf16' on the CPU (issue 8): ViT-S/16 and ViT-B/8 inference at batch 8 (mask-guided,
// 224², 2 threads): ours fp32, ours bf16 (autocast, cpp/model/device.h) and PyTorch eager fp32
// (bench/embed_eager.py serve: the same DINO ViT + mask guidance as a plain nn.Module), same
// weights and inputs, in the same run; medians, ratios and the bf16 error, written to
// bench/RESULTS.md between the bf16-bench markers.
//
//   npx tsc -p tsconfig.json && node dist/bench/bf16.bench.js [--write] [--reps-s N] [--reps-b N] [--archs dino_vits16,dino_vitb8]
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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadBackbone, nativeVersions, Tensor, type Backbone } from 'anomalyncd';
import { modelAddon } from '../ts/native/loader.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SELF = fileURLToPath(import.meta.url);
let repoRoot = dirname(SELF);
while (!existsSync(join(repoRoot, 'package.json'))) repoRoot = dirname(repoRoot);
const PY = process.env['EMBED_BENCH_PYTHON'] ?? '/usr/bin/python3';
const PY_SCRIPT = join(repoRoot, 'bench', 'embed_eager.py');
const RESULTS = join(repoRoot, 'bench', 'RESULTS.md');
const START = '<!-- bf16-bench:start -->';
const END = '<!-- bf16-bench:end -->';
const THREADS = 2;
const BATCH = 8;
const IMG = 224;
type Arch = 'dino_vits16' | 'dino_vitb8';
const REPS: Record<Arch, number> = { dino_vits16: arg('--reps-s', 5), dino_vitb8: arg('--reps-b', 2) };
type Variant = 'ours fp32' | 'ours bf16' | 'eager fp32';
const VARIANTS: Variant[] = ['ours fp32', 'ours bf16', 'eager fp32'];

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
    const rows: { arch: Arch; ms: Record<Variant, number[]>; errBf16: number; errEager: number; outAbsMax: number }[] = [];
    const archsArg = argv.indexOf('--archs');
    const archs = (archsArg >= 0 ? argv[archsArg + 1]!.split(',') : ['dino_vits16', 'dino_vitb8']) as Arch[];
    for (const arch of archs) {
      log(`${arch}: loading`);
      const bb: Backbone = await loadBackbone(join(dir, `${arch}.pth`), { arch, device: 'cpu' });
      await eager.request({ cmd: 'load', arch });
      const one = input(1);
      const eightIn = input(BATCH);
      const run = async (v: Variant, b: number, out?: string): Promise<number> => {
        const { x, m } = b === 1 ? one : eightIn;
        if (v === 'eager fp32') {
          const r = await eager.request({ arch, batch: b, ...(out ? { out } : {}) });
          return r['wallMs'] as number;
        }
        const w0 = performance.now();
        const y = await bb.embed(x, m, { threads: THREADS, batchSize: b, precision: v === 'ours bf16' ? 'bf16' : 'fp32' });
        const ms = performance.now() - w0;
        if (out) writeFileSync(out, y.data);
        return ms;
      };
      for (const v of VARIANTS) await run(v, 1); // warm-up
      const ms: Record<Variant, number[]> = { 'ours fp32': [], 'ours bf16': [], 'eager fp32': [] };
      for (let rep = 0; rep < REPS[arch]; rep++) {
        for (let j = 0; j < VARIANTS.length; j++) {
          const v = VARIANTS[(rep + j) % VARIANTS.length]!;
          const out = rep === 0 ? join(dir, `${arch}-${v.replace(' ', '-')}.f32`) : undefined;
          ms[v].push(await run(v, BATCH, out));
          log(`${arch} rep ${rep + 1}/${REPS[arch]} ${v}: ${ms[v].at(-1)!.toFixed(0)} ms (load ${loadavg()[0]!.toFixed(1)})`);
        }
      }
      const f32 = readF32(join(dir, `${arch}-ours-fp32.f32`));
      const b16 = readF32(join(dir, `${arch}-ours-bf16.f32`));
      const eg = readF32(join(dir, `${arch}-eager-fp32.f32`));
      let errBf16 = 0, errEager = 0, outAbsMax = 0;
      for (let i = 0; i < f32.length; i++) {
        errBf16 = Math.max(errBf16, Math.abs(b16[i]! - f32[i]!));
        errEager = Math.max(errEager, Math.abs(eg[i]! - f32[i]!));
        outAbsMax = Math.max(outAbsMax, Math.abs(f32[i]!));
      }
      rows.push({ arch, ms, errBf16, errEager, outAbsMax });
      bb.dispose();
    }
    eager.close();
    const load1 = loadavg();
    const wallS = (performance.now() - t0) / 1000;
    const name = { dino_vits16: 'ViT-S/16', dino_vitb8: 'ViT-B/8' } as const;
    const lines = [
      START,
      '## bf16 on the CPU: ours fp32 / ours bf16 / PyTorch eager fp32 (issue 8)',
      '',
      `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores (bf16 dot products: ${bf16Dot ? 'yes, AVX512-BF16/AMX' : 'no'}); ` +
        `libtorch ${versions.libtorch ?? '?'} (ours) and python3-torch ${info.torch} (eager), ${THREADS} threads, OMP_WAIT_POLICY=PASSIVE. ` +
        `Date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Load average (1/5/15 min) before: ${load0.map((x) => x.toFixed(1)).join(' / ')}, ` +
        `after: ${load1.map((x) => x.toFixed(1)).join(' / ')} (other agents share the 2 cores). Whole run: ${wallS.toFixed(0)} s.`,
      '',
      `Batch ${BATCH}, 224², mask-guided (soft blob masks), random DINO-like weights (embed_eager.py prepare). The three variants ` +
        'interleaved in a rotating order; one untimed batch-1 warm-up each. Medians of the reps shown; the error is the max |Δ| of ' +
        'the batch-8 embeddings against ours fp32 (final-normed [CLS], values up to the "max |y|" column).',
      '',
      '| model | reps | ours fp32 (ms) | ours bf16 (ms) | eager fp32 (ms) | bf16 vs eager fp32 | bf16 vs ours fp32 | ours fp32 vs eager | max \\|y\\| | bf16 max \\|Δ\\| | eager max \\|Δ\\| |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const f = median(r.ms['ours fp32']), b = median(r.ms['ours bf16']), e = median(r.ms['eager fp32']);
        return `| ${name[r.arch]} | ${r.ms['ours fp32'].length} | ${f.toFixed(0)} | ${b.toFixed(0)} | ${e.toFixed(0)} | **${(e / b).toFixed(2)}×** | ${(f / b).toFixed(2)}× | ${(e / f).toFixed(2)}× | ${r.outAbsMax.toFixed(2)} | ${r.errBf16.toExponential(1)} | ${r.errEager.toExponential(1)} |`;
      }),
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
      const text = readFileSync(RESULTS, 'utf8');
      const a = text.indexOf(START), z = text.indexOf(END);
      writeFileSync(RESULTS, a >= 0 && z > a ? text.slice(0, a) + section + text.slice(z + END.length) : text.trimEnd() + '\n\n' + section + '\n');
      log(`written to ${RESULTS}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
