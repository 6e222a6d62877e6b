// Region descriptors: the TypeScript oracle (analysis/descriptors.ts, on the main thread) against
// the C++ path (extractRegions({descriptors: true}): crop/descriptor.cc on the regions threads),
// on every MTD test image with its GT mask as the map (masksAsMaps) and on synthetic maps through
// MEBin. Same process, alternating, median of --reps; the C++ cost is the extra wall time of
// extractRegions with descriptors over without, and the native per-image compute time it reports.
// Also checks the two agree (largest relative difference).
// Usage: node dist/bench/descriptor-speed.bench.js [--reps 5] [--threads 2] [--write]
import { cpus, loadavg } from 'node:os';
import { extractRegions, generateSynthetic, loadDataset } from 'anomalyncd';
import { regionDescriptor } from '../ts/analysis/descriptors.js';
import { args, flag, mtdRoot, writeResultsSection } from './cli-args.js';

const reps = Number(flag('reps') ?? 5);
const threads = Number(flag('threads') ?? cpus().length);
const loadBefore = loadavg()[0]!;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const mtd = await loadDataset({ kind: 'mtd', root: mtdRoot, groundTruthAsMaps: true });
const synth = generateSynthetic({ types: 8, perType: 40, good: 10, size: 128, mapSize: 64, seed: 5 });
const sets = [
  { name: `MTD test split (${mtd.items.length} images, masks as maps)`, images: mtd.items.map((i) => i.image), maps: mtd.items.map((i) => i.map), options: { masksAsMaps: true } },
  { name: `synthetic (${synth.length} images, 128 px, MEBin)`, images: synth.map((s) => s.image), maps: synth.map((s) => s.map), options: {} },
];
const rows: string[] = [];
for (const set of sets) {
  for (const t of [1, threads]) {
    const plain: number[] = [], withDesc: number[] = [], native: number[] = [];
    let crops = 0;
    for (let r = 0; r < reps + 1; r++) {
      for (const descriptors of [false, true]) {
        const t0 = performance.now();
        const res = await extractRegions(set.images, set.maps, { ...set.options, threads: t, descriptors, returnPixels: true });
        const ms = performance.now() - t0;
        if (r === 0) continue; // warm-up (decoding caches)
        (descriptors ? withDesc : plain).push(ms);
        if (descriptors) {
          native.push(res.timings.descriptorMsPerImage * res.items.length);
          crops = res.items.reduce((a, it) => a + it.crops.length, 0);
        }
      }
    }
    rows.push(`| ${set.name} | ${t} | ${crops} | ${median(plain).toFixed(0)} | ${median(withDesc).toFixed(0)} | ${((median(withDesc) - median(plain)) / crops).toFixed(3)} | ${(median(native) / crops).toFixed(3)} |`);
    process.stderr.write(`${rows[rows.length - 1]}\n`);
  }
  // The oracle on the same crops, on the main thread.
  const res = await extractRegions(set.images, set.maps, { ...set.options, threads, descriptors: true });
  const crops = res.items.flatMap((it) => it.crops);
  const tsMs: number[] = [];
  let rel = 0;
  for (let r = 0; r < Math.max(1, Math.min(reps, 3)); r++) {
    const t0 = performance.now();
    const out = crops.map((c) => regionDescriptor(c.image!, c.mask!));
    tsMs.push(performance.now() - t0);
    if (r === 0)
      out.forEach((d, j) => d.forEach((v, q) => (rel = Math.max(rel, Math.abs(v - crops[j]!.descriptor![q]!) / Math.max(Math.abs(v), 1e-300)))));
  }
  rows.push(`| ${set.name}: TypeScript oracle, main thread | 1 | ${crops.length} | – | – | ${(median(tsMs) / crops.length).toFixed(3)} | – (largest relative difference to C++: ${rel.toExponential(1)}) |`);
  process.stderr.write(`${rows[rows.length - 1]}\n`);
}

const section = `<!-- descriptor-speed:start -->
### Region descriptors: C++ (\`extractRegions({descriptors: true})\`) against the TypeScript oracle (\`bench/descriptor-speed.bench.ts\`)

- Machine: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores; Node ${process.version}; ${new Date().toISOString().slice(0, 16)} UTC; load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; median of ${reps} alternating runs after a warm-up.
- ms/crop (wall): the extra wall time of \`extractRegions\` with descriptors over without, per crop; native: the C++ compute time it reports (summed over threads), per crop. The oracle runs on the main thread (its time blocks the event loop; the C++ path does not).

| set | threads | crops | extractRegions ms | with descriptors ms | ms/crop (wall) | ms/crop (native compute) |
|---|---|---|---|---|---|---|
${rows.join('\n')}
<!-- descriptor-speed:end -->`;
process.stdout.write(section + '\n');
if (args.includes('--write')) writeResultsSection('descriptor-speed', section);
