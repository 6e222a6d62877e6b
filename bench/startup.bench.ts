// Start-up and CLI write-path benchmark of `anomalyncd mebin`.
//
//   npx tsc -p tsconfig.json && node dist/bench/startup.bench.js [--before DIR] [--write] [--quick]
//
// --before DIR  also time an older checkout's CLI (DIR/dist/ts/cli/main.js, built with its own
//               addon), interleaved with this one, for a before/after in the same run
// --before-label TEXT  what that checkout is (printed with the figures)
// --write       replaces the section between the startup-bench markers in bench/RESULTS.md
// --quick       fewer repetitions (a smoke run; do not --write its figures)
//
// What it measures:
//  1. start-up: wall time and peak RSS (GNU time's %M) of whole processes: bare `node -e 0`,
//     the CLI's JS alone (`anomalyncd --version`), loading anomalyncd_core.node alone, and
//     `anomalyncd mebin` on one 256² map; runs of the variants interleaved, medians;
//  2. the libraries anomalyncd_core.node maps, with what each costs to load (dlopen in a bare node);
//  3. `anomalyncd mebin --binary-out` over the 80 256² maps of the MEBin bench (bench/mtd-maps.ts,
//     written as PNG files): the CLI's reported ms/map against the bench's in-process figure
//     (`binarize(maps, {threads: 1, returnBinary: false})`, median of 25 calls) in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { binarize, nativeVersions } from 'anomalyncd';
import { encodeTensorPng } from '../ts/io/png.js';
import { benchMaps, selectSamples } from './mtd-maps.js';
import { mtdRoot, repoRoot, writeResultsSection, resultsPath } from './cli-args.js';

const argv = process.argv.slice(2);
const WRITE = argv.includes('--write');
const QUICK = argv.includes('--quick');
const beforeAt = argv.indexOf('--before');
const BEFORE = beforeAt >= 0 ? argv[beforeAt + 1] : undefined;
const labelAt = argv.indexOf('--before-label');
const BEFORE_LABEL = labelAt >= 0 ? argv[labelAt + 1] : undefined;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--before' || a === '--before-label') i++;
  else if (a !== '--write' && a !== '--quick') throw new Error(`Unknown argument ${a} (expected --before DIR, --write, --quick)`);
}
const STARTUP_REPS = QUICK ? 5 : 21;
const CLI_REPS = QUICK ? 3 : 9;
const BENCH_REPS = QUICK ? 5 : 25;

const MTD = mtdRoot;
const CLI = join(repoRoot, 'dist', 'ts', 'cli', 'main.js');
const CORE_ADDON = join(repoRoot, 'build', 'Release', 'anomalyncd_core.node');

function log(msg: string): void {
  process.stderr.write(msg + '\n');
}
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** One process: wall ms (measured here), CPU ms (user + system, all threads) and peak RSS MB (GNU time). */
function runOnce(args: string[], env: NodeJS.ProcessEnv = process.env): { ms: number; cpuMs: number; rssMb: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSSKB=%M CPU=%U+%S', process.execPath, ...args], { encoding: 'utf8', env });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const m = /RSSKB=(\d+) CPU=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  if (!m) throw new Error(`no RSS from /usr/bin/time: ${r.stderr}`);
  return { ms, cpuMs: (Number(m[2]) + Number(m[3])) * 1000, rssMb: Number(m[1]) / 1024, stdout: r.stdout };
}

interface Row {
  name: string;
  ms: number[];
  cpu: number[];
  rss: number[];
}

/** Runs every variant `reps` times, interleaved, after one untimed warm-up each (page cache). */
function interleaved(variants: { name: string; args: string[] }[], reps: number): Row[] {
  const rows = variants.map((v) => ({ name: v.name, ms: [] as number[], cpu: [] as number[], rss: [] as number[] }));
  for (const v of variants) runOnce(v.args);
  for (let k = 0; k < reps; k++)
    variants.forEach((v, i) => {
      const r = runOnce(v.args);
      rows[i]!.ms.push(r.ms);
      rows[i]!.cpu.push(r.cpuMs);
      rows[i]!.rss.push(r.rssMb);
    });
  return rows;
}

/** The shared libraries a process maps after dlopen-ing `lib` (from /proc/self/maps). */
function librariesOf(lib: string): string[] {
  const r = spawnSync(
    process.execPath,
    ['-e', `try { process.dlopen({ exports: {} }, ${JSON.stringify(lib)}); } catch {} const fs = require('fs'); const s = new Set(); for (const l of fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')) { const p = l.split(/\\s+/)[5]; if (p && p.includes('.so')) s.add(p); } console.log([...s].join('\\n'));`],
    { encoding: 'utf8' },
  );
  return r.stdout.trim().split('\n');
}

/** Extra wall ms / CPU ms / RSS MB of dlopen-ing each library in a bare node, interleaved with bare runs (medians of the differences). */
function loadCosts(libs: Record<string, string>): Record<string, { ms: number; cpu: number; rss: number }> {
  const names = Object.keys(libs);
  const rows = interleaved(
    [{ name: 'bare', args: ['-e', '0'] }, ...names.map((n) => ({ name: n, args: ['-e', `try { process.dlopen({ exports: {} }, ${JSON.stringify(libs[n])}); } catch {}`] }))],
    Math.max(5, Math.floor(STARTUP_REPS / 2)),
  );
  const bare = rows[0]!;
  const out: Record<string, { ms: number; cpu: number; rss: number }> = {};
  names.forEach((n, i) => {
    const row = rows[i + 1]!;
    out[n] = {
      ms: median(row.ms.map((v, k) => v - bare.ms[k]!)),
      cpu: median(row.cpu.map((v, k) => v - bare.cpu[k]!)),
      rss: median(row.rss.map((v, k) => v - bare.rss[k]!)),
    };
  });
  return out;
}

async function main(): Promise<void> {
  if (!existsSync(MTD)) {
    console.log(`MTD not found at ${MTD} (set MTD_ROOT); benchmark skipped.`);
    return;
  }
  const started = performance.now();
  const versions = nativeVersions();
  const load0 = loadavg();
  const work = mkdtempSync(join(tmpdir(), 'anomalyncd-startup-'));
  try {
    // The 80 256² maps of the MEBin bench, as PNG files; the first alone for start-up.
    const samples = selectSamples(MTD, 64, 16);
    const maps = benchMaps(samples, 256);
    const many = join(work, 'maps');
    const one = join(work, 'one');
    mkdirSync(many);
    mkdirSync(one);
    maps.forEach((m, i) => writeFileSync(join(many, `map${String(i).padStart(3, '0')}.png`), encodeTensorPng(m)));
    writeFileSync(join(one, 'map000.png'), encodeTensorPng(maps[0]!));
    log(`wrote ${maps.length} maps to ${many}`);

    // 1. Start-up.
    const mebinArgs = (cli: string) => [cli, 'mebin', '--maps', one, '--out', join(work, 'one.json'), '--json'];
    const variants = [
      { name: 'bare `node -e 0`', args: ['-e', '0'] },
      { name: 'CLI JS only (`anomalyncd --version`)', args: [CLI, '--version'] },
      { name: 'load anomalyncd_core.node only', args: ['-e', `require(${JSON.stringify(CORE_ADDON)})`] },
      { name: '**`anomalyncd mebin`, one 256² map**', args: mebinArgs(CLI) },
    ];
    if (BEFORE) variants.push({ name: '`anomalyncd mebin`, one 256² map, before (one addon)', args: mebinArgs(join(BEFORE, 'dist', 'ts', 'cli', 'main.js')) });
    log('start-up runs...');
    const startup = interleaved(variants, STARTUP_REPS);

    // 2. What the core addon maps, and what OpenCV's libraries cost to load.
    const libs = librariesOf(CORE_ADDON);
    const torch = libs.filter((l) => /libtorch|libc10/.test(l));
    const codecsLibs = librariesOf(join(repoRoot, 'build', 'Release', 'anomalyncd_codecs.so'));
    const find = (list: string[], re: RegExp) => list.find((l) => re.test(l));
    const named: Record<string, string> = {};
    for (const [name, lib] of [
      ['libopencv_core', find(libs, /libopencv_core\./)],
      ['libopencv_imgproc (with core)', find(libs, /libopencv_imgproc\./)],
      ['libopencv_imgcodecs (with core, imgproc)', find(codecsLibs, /libopencv_imgcodecs\./)],
    ] as const)
      if (lib) named[name] = lib;
    log('library load costs...');
    const cost = loadCosts(named);
    const codecsCount = codecsLibs.length;

    // 3. --binary-out over the bench's maps, and the bench's own figure.
    log('binary-out runs...');
    const outDir = (k: string) => join(work, `bin-${k}`);
    const cliRuns: Record<string, number[]> = {};
    const cliVariants: { name: string; cli: string; threads?: string }[] = [
      { name: 'after', cli: CLI },
      { name: 'after, --threads 1', cli: CLI, threads: '1' },
    ];
    if (BEFORE) {
      const old = join(BEFORE, 'dist', 'ts', 'cli', 'main.js');
      cliVariants.push({ name: 'before', cli: old }, { name: 'before, --threads 1', cli: old, threads: '1' });
    }
    for (let k = 0; k < CLI_REPS; k++)
      for (const v of cliVariants) {
        const dir = outDir(String(k));
        rmSync(dir, { recursive: true, force: true });
        const args = [v.cli, 'mebin', '--maps', many, '--out', join(work, 'many.json'), '--binary-out', dir, '--json'];
        if (v.threads) args.push('--threads', v.threads);
        const r = runOnce(args);
        (cliRuns[v.name] ??= []).push((JSON.parse(r.stdout) as { timings: { mebinMsPerMap: number } }).timings.mebinMsPerMap);
      }
    const benchMs: number[] = [];
    await binarize(maps, { threads: 1, returnBinary: false });
    for (let k = 0; k < BENCH_REPS; k++) benchMs.push((await binarize(maps, { threads: 1, returnBinary: false })).timings.mebinMsPerMap);
    const load1 = loadavg();

    const md = report({ versions, load0, load1, totalS: (performance.now() - started) / 1000, startup, libs, torch, cost, codecsCount, cliRuns, benchMs, maps: maps.length });
    console.log(md);
    if (WRITE) {
      if (QUICK) throw new Error('--quick figures are not written; run without --quick');
      writeResultsSection('startup-bench', md);
      log(`wrote ${resultsPath}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function report(r: {
  versions: { libtorch: string; opencv: string };
  load0: number[];
  load1: number[];
  totalS: number;
  startup: Row[];
  libs: string[];
  torch: string[];
  cost: Record<string, { ms: number; cpu: number; rss: number }>;
  codecsCount: number;
  cliRuns: Record<string, number[]>;
  benchMs: number[];
  maps: number;
}): string {
  const f = (x: number, d = 3) => x.toFixed(d);
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  const bench = median(r.benchMs);
  const mebin = r.startup.find((s) => s.name.startsWith('**'))!;
  const ratio = (row: Row) => median(row.ms.map((v, k) => v / r.startup[0]!.ms[k]!));
  const lines = [
    '## Start-up of `anomalyncd mebin` and its `--binary-out` path (`bench/startup.bench.ts`)',
    '',
    `- Machine: ${cpu}, ${cpus().length} cores; Node ${process.version}; OpenCV ${r.versions.opencv}, libtorch ${r.versions.libtorch}; ${new Date().toISOString().slice(0, 10)}.`,
    `- Load average (1 min): ${f(r.load0[0]!, 2)} before, ${f(r.load1[0]!, 2)} after (other processes shared the cores: read medians, and the before/after pairs of one run). Whole run: ${f(r.totalS, 0)} s.`,
    ...(BEFORE_LABEL ? [`- "Before": ${BEFORE_LABEL}.`] : []),
    `- Each start-up figure is the median over ${r.startup[0]!.ms.length} runs of a whole process, the variants interleaved run by run after one untimed warm-up each; wall time is measured around the child process, peak RSS is GNU time's maximum resident set size.`,
    '',
    '| process | wall ms (median) | wall ms (min) | CPU ms (median) | peak RSS MB (median) | wall / bare (median of pairs) |',
    '|---|---|---|---|---|---|',
    ...r.startup.map(
      (s) =>
        `| ${s.name} | ${f(median(s.ms), 0)} | ${f(Math.min(...s.ms), 0)} | ${f(median(s.cpu), 0)} | ${f(median(s.rss), 0)} | ${f(ratio(s), 2)}× |`,
    ),
    '',
    `- Target ≤ 400 ms and ≤ 120 MB (on this machine; bare Node ~130 ms idle): RSS **${median(mebin.rss) <= 120 ? 'met' : 'not met'}** (${f(median(mebin.rss), 0)} MB). Wall: ${f(median(mebin.ms), 0)} ms at the median under the load above, ${f(ratio(mebin), 2)}× a bare Node started alongside it; at the ~130 ms of an idle bare Node that is **≈${f(130 * ratio(mebin), 0)} ms, ${130 * ratio(mebin) <= 400 ? 'met' : 'not met'}** (the wall ratio is the figure the load distorts least; ${f(median(mebin.cpu), 0)} ms of CPU at the median).`,
    `- anomalyncd_core.node maps ${r.libs.length} shared libraries, ${r.torch.length ? `**including libtorch (${r.torch.join(', ')})**` : 'none of them libtorch or c10'}; anomalyncd_codecs.so (OpenCV's imgcodecs, loaded only when an image other than a plain gray PNG is decoded) maps ${r.codecsCount}. ` +
      'Cost of loading OpenCV\'s libraries into a bare node (dlopen with their dependencies; medians of the differences to interleaved `node -e 0` runs): ' +
      Object.entries(r.cost)
        .map(([name, c]) => `${name} +${f(c.ms, 0)} ms wall / +${f(c.cpu, 0)} ms CPU / +${f(c.rss, 0)} MB`)
        .join(', ') +
      '.',
    '',
    `### \`anomalyncd mebin --binary-out\` over the ${r.maps} 256² maps of the MEBin bench`,
    '',
    `The maps of \`bench/mebin.bench.ts\` (\`bench/mtd-maps.ts\`), written as PNG files; the CLI decodes them, binarises and writes each binary map as a PNG. Its reported \`mebinMsPerMap\` (native compute per map, decoding and writing excluded) against the bench's in-process figure, \`binarize(maps, {threads: 1, returnBinary: false})\` over the same maps: median of ${r.benchMs.length} calls, **${f(bench)} ms/map**.`,
    '',
    `- Target: within 1.5× of the bench: **${median(r.cliRuns['after']!) / bench <= 1.5 ? 'met' : 'not met'}** (${f(median(r.cliRuns['after']!) / bench, 2)}× with the default threads, ${f(median(r.cliRuns['after, --threads 1']!) / bench, 2)}× with one). Each thread binarises maps nobody keeps into one reused result (\`mebin::binarizeInto\`) and encodes PNGs into one reused buffer, so no fresh output pages fault in per map; a new worker thread grows its scratch buffers (\`mebin::prepareWorkspace\`) before its first map's clock starts, as the bench's warm-up call does.`,
    '',
    '| CLI | runs | reported ms/map (median) | min | / bench |',
    '|---|---|---|---|---|',
    ...Object.entries(r.cliRuns).map(([name, v]) => `| ${name} | ${v.length} | ${f(median(v))} | ${f(Math.min(...v))} | ${f(median(v) / bench, 2)}× |`),
    '',
    '### What remains, and what would remove it',
    '',
    '- **Before → after.** The one addon linked libtorch, so every command loaded it (~170 MB and most of a second); `anomalyncd_core.node` links OpenCV only. ' +
      "It no longer links OpenCV's imgcodecs either: Debian builds it against GDAL, poppler and friends (the row above). PNG maps are read and every PNG is written " +
      "through libpng with OpenCV's settings (the same bytes, checked by `crop_selftest`), and other images go to `anomalyncd_codecs.so`, loaded on first use. " +
      'The CLI also loads its discover/train/model code on first use instead of at start-up (the report alone cost ~11 MB).',
    '- **Bare Node** is most of what is left (about 40 MB and 0.13 s idle here). Nothing in this package removes it; a V8 start-up snapshot of the CLI would trim its own JS share (the `--version` row).',
    "- **OpenCV core + imgproc** (the libopencv rows): Debian's libopencv_core links LAPACK/OpenBLAS (which starts its thread pool at load), TBB and GLX/X11. " +
      'A static OpenCV built with only core and imgproc, without LAPACK, TBB or OpenGL, would remove most of it; so would a distribution build without those options.',
    "- **Images other than plain gray PNGs** (`anomalyncd regions` on JPEGs) still load imgcodecs and its dependencies on the first image (the imgcodecs row). " +
      "A libjpeg-turbo path proven bit-exact against OpenCV's decode (same library, same settings, as done for PNG) would remove that too.",
    '',
  ];
  return lines.join('\n');
}

await main();
