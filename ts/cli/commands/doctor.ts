/**
 * `anomalyncd doctor`: what the library sees — which native binary loaded from
 * where (and why others were passed over), libtorch / OpenCV / OpenBLAS versions
 * and BLAS kernel, CUDA build and devices, CPU features, thread defaults — and a
 * short self-test of each stage on tiny synthetic inputs. `--json` for machines.
 * @internal
 * @module
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { InternalError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { encodePng } from '../../io/png.js';
import { generateSynthetic } from '../../io/synthetic.js';
import { blasCoretype, binarySources, coreAddon, gpuUsable, loaderReport, modelAddon, packageRoot } from '../../native/loader.js';
import { describeSource, nativeBuildInfo } from '../../native/versions.js';
import { binarize } from '../../stages/mebin.js';
import { loadBackbone } from '../../stages/model.js';
import { extractRegions } from '../../stages/regions.js';
import { fit } from '../../stages/train.js';
import { flagHelp, parseFlags, toggle } from '../flags.js';
import type { Command } from '../output.js';

const FLAGS = {
  json: toggle({ help: 'Print one JSON object.' }),
  'no-self-test': toggle({ help: 'Only report what is found; run no stage.' }),
} as const;

/** A 32×24 RGB JPEG (OpenCV, quality 90): decoded through anomalyncd_codecs.so. */
const JPEG_32x24 =
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAYACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDW1i8+9zXD6xefe5rc1i8+9zXEaxefe5r5DgjJPg0P5v4Uyr4dDD1i8+9zVHwX4d/4TPxdbWMg3Wcebi65/wCWSkZHUH5iVXI5G7PaqWr3n3ua9g+Evh7/AIR3wj9umGLzVNs7c9IsHyxwSOhLZ4Pz4PSv6R4szv8A1H4UqYmg7Ymt+6pd1KS1mv8ABG8k9ublT+I/ceIs1/1T4dnXou1er+7p91KS1l/25G8k9ublT3KOsXn3ua4jWLz73NFFfNcEYSl7mh4fCmGp+7oUfBfh3/hM/F1tYyDdZx5uLrn/AJZKRkdQfmJVcjkbs9q991i8+9zRRX5x4w4uri+L6GXVX+6oUo8i7OespertFPyjHTdv4bxMxNTE8S0sFUf7ujTjyrznrJ+rsl6RXz//2Q==';

/** The tiny ViT of the self-test (random init). */
const TINY_ARCH = { patchSize: 16, embedDim: 32, depth: 2, numHeads: 2, maskLayers: 1 } as const;

export interface SelfTestResult {
  stage: 'decode' | 'mebin' | 'regions' | 'model' | 'train';
  ok: boolean;
  ms: number;
  detail: string;
}

/** CPU facts from /proc/cpuinfo (Linux) and os.cpus(). */
function cpuFacts(): { model: string; logicalCores: number; features: Record<string, boolean> } {
  let flags = new Set<string>();
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    // not Linux: features unknown (reported false)
  }
  const names = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'amx_bf16'] as const;
  const features: Record<string, boolean> = {};
  for (const n of names) features[n] = flags.has(n);
  features.bf16 = flags.has('avx512_bf16') || flags.has('amx_bf16');
  return { model: cpus()[0]?.model ?? 'unknown', logicalCores: availableParallelism(), features };
}

async function timed(stage: SelfTestResult['stage'], work: () => Promise<string>): Promise<SelfTestResult> {
  const t0 = performance.now();
  try {
    const detail = await work();
    return { stage, ok: true, ms: Math.round(performance.now() - t0), detail };
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    return { stage, ok: false, ms: Math.round(performance.now() - t0), detail: message.split('\n')[0]! };
  }
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new InternalError(`self-test check failed: ${what}`);
}

/** Each stage once on tiny synthetic inputs (about a second in all on 2 cores). */
export async function selfTest(): Promise<SelfTestResult[]> {
  const results: SelfTestResult[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'anomalyncd-doctor-'));
  try {
    const samples = generateSynthetic({ perType: 1, good: 0, size: 96, mapSize: 48, seed: 7 });
    const threads = Math.min(2, availableParallelism());
    results.push(
      await timed('decode', async () => {
        // An 8-bit gray PNG map (libpng) and a JPEG image (OpenCV imgcodecs, dlopen-ed).
        const map = new Uint8Array(24 * 32);
        for (let y = 8; y < 16; y++) for (let x = 10; x < 22; x++) map[y * 32 + x] = 200;
        await writeFile(join(dir, 'map.png'), encodePng(32, 24, map));
        await writeFile(join(dir, 'image.jpg'), Buffer.from(JPEG_32x24, 'base64'));
        const png = await binarize([join(dir, 'map.png')], { threads: 1, range: [1, 255] });
        check(png.maps[0]!.count === 1, `one component in the PNG map (got ${png.maps[0]!.count})`);
        const jpg = await extractRegions([join(dir, 'image.jpg')], [new Tensor('uint8', [24, 32], map)], { threads: 1, range: [1, 255] });
        check(jpg.items[0]!.crops.length === 1, `one crop from the JPEG (got ${jpg.items[0]!.crops.length})`);
        return 'PNG (libpng) and JPEG (anomalyncd_codecs.so) decoded';
      }),
    );
    results.push(
      await timed('mebin', async () => {
        // Cones over a low textured floor, 1, 2, 1 and 3 of them: MEBin must count them.
        const cones = [[[20, 20, 250]], [[16, 16, 250], [46, 46, 230]], [[40, 30, 240]], [[14, 14, 250], [50, 14, 240], [30, 48, 250]]];
        const maps = cones.map((centres) => {
          const d = new Uint8Array(64 * 64);
          for (let y = 0; y < 64; y++)
            for (let x = 0; x < 64; x++) {
              let v = (x * 7 + y * 13) % 9;
              for (const [cx, cy, a] of centres) v = Math.max(v, Math.round(a! * Math.max(0, 1 - Math.hypot(x - cx!, y - cy!) / 12)));
              d[y * 64 + x] = v;
            }
          return new Tensor('uint8', [64, 64], d);
        });
        const r = await binarize(maps, { threads, range: [1, 255] });
        const counts = r.maps.map((m) => m.count);
        check(counts.join() === cones.map((c) => c.length).join(), `component counts ${cones.map((c) => c.length).join(',')} (got ${counts.join(',')})`);
        return `${r.maps.length} maps, components ${counts.join(',')} as drawn`;
      }),
    );
    let crops: { image: Tensor<'uint8'>; mask: Tensor<'uint8'> }[] = [];
    results.push(
      await timed('regions', async () => {
        const r = await extractRegions(
          samples.map((s) => s.image),
          samples.map((s) => s.map),
          { threads },
        );
        crops = r.items.flatMap((i) => i.crops.map((c) => ({ image: c.image!, mask: c.mask! })));
        check(r.items.every((i) => i.crops.length >= 1), 'at least one crop per defective image');
        return `${crops.length} crops from ${samples.length} images`;
      }),
    );
    results.push(
      await timed('model', async () => {
        check(crops.length > 0, 'crops from the regions stage');
        const backbone = await loadBackbone(null, { arch: TINY_ARCH, seed: 1 });
        try {
          const y = await backbone.embedCrops(crops, { threads });
          check(y.shape[0] === crops.length && y.shape[1] === TINY_ARCH.embedDim, `features [${crops.length}, ${TINY_ARCH.embedDim}] (got [${y.shape.join(', ')}])`);
          check(y.data.every((v) => Number.isFinite(v)), 'finite features');
          return `random-init ViT (width ${TINY_ARCH.embedDim}, depth ${TINY_ARCH.depth}): ${y.shape.join('×')} features`;
        } finally {
          backbone.dispose();
        }
      }),
    );
    results.push(
      await timed('train', async () => {
        check(crops.length >= 2, 'two crops from the regions stage');
        const model = await fit({ unlabelled: crops }, { k: 2, arch: TINY_ARCH, backbone: null, epochs: 1, batchSize: Math.min(8, crops.length), seed: 1, threads });
        try {
          const p = await model.predict(crops, { threads });
          check(p.probabilities.length === crops.length, 'a prediction per crop');
          check(p.probabilities.every((q) => q.length === 2 && Math.abs(q[0]! + q[1]! - 1) < 1e-4), 'probabilities over k = 2 that sum to 1');
          return `1 epoch on ${crops.length} crops, ${p.probabilities.length} predictions over k = 2`;
        } finally {
          model.dispose();
        }
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/** Everything doctor reports (the `--json` output). */
export function doctorFacts(): Record<string, unknown> {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const facts: Record<string, unknown> = {
    package: { name: pkg.name, version: pkg.version, root: packageRoot },
    node: { version: process.version, napi: Number(process.versions.napi), platform: process.platform, arch: process.arch, glibc: header?.glibcVersionRuntime ?? null },
    searchOrder: binarySources().sources.map((s) => ({ name: s.name, kind: s.kind, dir: s.dir })),
  };
  const errors: string[] = [];
  try {
    coreAddon();
  } catch (e) {
    errors.push((e as Error).message);
  }
  let info;
  try {
    info = nativeBuildInfo();
  } catch (e) {
    errors.push((e as Error).message);
  }
  const report = loaderReport();
  facts.binary = {
    loaded: report.loaded.map((l) => ({ addon: l.addon, file: l.file, source: describeSource(l.source), kind: l.source.kind, ...(l.source.manifest ? { manifest: l.source.manifest.versions } : {}) })),
    rejected: [...report.skipped, ...report.rejected].map((r) => ({ source: r.source, dir: r.dir, addon: r.addon, kind: r.failure.kind, reason: r.failure.reason })),
    errors,
  };
  facts.versions = info
    ? { libtorch: info.libtorch, opencv: info.opencv, openblas: info.openblas?.config ?? null, cxx11Abi: info.cxx11Abi ?? null, compiler: info.compiler }
    : null;
  facts.blas = info?.openblas ? { core: info.openblas.core, threads: info.openblas.threads, coretype: blasCoretype } : { coretype: blasCoretype };
  facts.cuda = { ...(info?.cuda ?? {}), gpuVisible: gpuUsable(), cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null };
  facts.cpu = cpuFacts();
  facts.threads = {
    default: availableParallelism(),
    torchIntraop: info?.threads.intraop ?? null,
    torchInterop: info?.threads.interop ?? null,
    env: Object.fromEntries(['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'OPENBLAS_CORETYPE', 'UV_THREADPOOL_SIZE'].map((k) => [k, process.env[k] ?? null])),
  };
  return facts;
}

function yes(b: unknown): string {
  return b ? 'yes' : 'no';
}

function print(facts: Record<string, unknown>, tests: SelfTestResult[] | undefined): string {
  const f = facts as {
    package: { name: string; version: string; root: string };
    node: { version: string; napi: number; platform: string; arch: string; glibc: string | null };
    searchOrder: { name: string }[];
    binary: { loaded: { addon: string; file: string; source: string }[]; rejected: { source: string; addon: string | null; reason: string }[]; errors: string[] };
    versions: { libtorch: string; opencv: string; openblas: string | null } | null;
    blas: { core?: string | null; threads?: number | null; coretype: { value?: string; source: string } };
    cuda: { libtorchCuda?: boolean; kernels?: boolean; available?: boolean; devices?: number; gpuVisible: boolean };
    cpu: { model: string; logicalCores: number; features: Record<string, boolean> };
    threads: { default: number; torchIntraop: number | null; torchInterop: number | null; env: Record<string, string | null> };
  };
  const out: string[] = [];
  out.push(`anomalyncd ${f.package.version} at ${f.package.root}`);
  out.push(`Node ${f.node.version} (N-API ${f.node.napi}) on ${f.node.platform}-${f.node.arch}${f.node.glibc ? `, glibc ${f.node.glibc}` : ''}`);
  out.push('', 'Native binary');
  out.push(`  search order: ${f.searchOrder.map((s) => s.name).join(' → ')}`);
  for (const l of f.binary.loaded) out.push(`  loaded ${l.addon}.node from ${l.source}: ${l.file}`);
  for (const r of f.binary.rejected) out.push(`  passed over ${r.source}${r.addon ? ` (${r.addon})` : ''}: ${r.reason}`);
  for (const e of f.binary.errors) out.push(`  ERROR: ${e.split('\n').join('\n    ')}`);
  if (f.versions) {
    out.push('', 'Libraries');
    out.push(`  libtorch ${f.versions.libtorch} · OpenCV ${f.versions.opencv}`);
    out.push(`  OpenBLAS: ${f.versions.openblas ?? 'not in the process'}${f.blas.core ? ` · kernel ${f.blas.core}` : ''}` + ` · OPENBLAS_CORETYPE ${f.blas.coretype.value ?? 'unset'} (${f.blas.coretype.source})`);
  }
  out.push('', 'CUDA');
  out.push(`  libtorch with CUDA: ${yes(f.cuda.libtorchCuda)} · anomalyncd CUDA kernels: ${yes(f.cuda.kernels)} · available: ${yes(f.cuda.available)} · devices: ${f.cuda.devices ?? 0} · NVIDIA device visible: ${yes(f.cuda.gpuVisible)}`);
  out.push('', 'CPU');
  out.push(`  ${f.cpu.model}, ${f.cpu.logicalCores} logical cores`);
  out.push(`  ${Object.entries(f.cpu.features).map(([k, v]) => `${k} ${yes(v)}`).join(' · ')}`);
  out.push('', 'Threads');
  out.push(`  default threads option: ${f.threads.default} · libtorch intra-op ${f.threads.torchIntraop ?? '?'}, inter-op ${f.threads.torchInterop ?? '?'}`);
  const env = Object.entries(f.threads.env).filter(([, v]) => v !== null);
  if (env.length) out.push(`  env: ${env.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (tests) {
    out.push('', 'Self-test');
    for (const t of tests) out.push(`  ${t.ok ? 'ok  ' : 'FAIL'} ${t.stage.padEnd(8)} ${String(t.ms).padStart(5)} ms  ${t.detail}`);
  }
  return out.join('\n') + '\n';
}

async function run(args: string[]): Promise<void> {
  const flags = parseFlags('doctor', FLAGS, args);
  const facts = doctorFacts();
  const loadedBoth = (facts.binary as { errors: string[] }).errors.length === 0;
  // The model addon is loaded by doctorFacts (buildInfo): the self-test needs both.
  let tests: SelfTestResult[] | undefined;
  if (!flags.noSelfTest && loadedBoth) {
    modelAddon();
    tests = await selfTest();
  }
  const ok = loadedBoth && (tests ?? []).every((t) => t.ok);
  if (flags.json) process.stdout.write(JSON.stringify({ ok, ...facts, ...(tests ? { selfTest: tests } : {}) }, null, 1) + '\n');
  else process.stdout.write(print(facts, tests) + (ok ? '\nAll good.\n' : ''));
  if (!ok) throw new InternalError(loadedBoth ? `self-test failed: ${tests!.filter((t) => !t.ok).map((t) => `${t.stage}: ${t.detail}`).join('; ')}` : 'the native addons could not be loaded (see above)');
}

export const doctorCommand: Command = { help: () => flagHelp('doctor', FLAGS), run };
