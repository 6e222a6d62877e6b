import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from 'anomalyncd';
import { choice, count, flagHelp, parseFlags, positive, text, toggle, withDefaults } from '../ts/cli/flags.js';
import { cli, encodePng, prng, tempDir, writePng } from './helpers.js';

/** A folder of random blob maps in nested sub-folders. */
function makeMaps(dir: string, n: number, seed: number): string[] {
  const rand = prng(seed);
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const sub = i % 3 === 0 ? 'b/deeper' : i % 3 === 1 ? 'a' : '';
    mkdirSync(join(dir, sub), { recursive: true });
    const px = new Array(48 * 64).fill(0).map(() => Math.floor(rand() * 30));
    for (let b = 0; b < 1 + (i % 3); b++) {
      const r0 = Math.floor(rand() * 36), c0 = Math.floor(rand() * 50), v = 120 + Math.floor(rand() * 136);
      for (let r = r0; r < r0 + 10; r++) for (let c = c0; c < c0 + 12; c++) px[r * 64 + c] = v;
    }
    const name = (sub ? sub + '/' : '') + `m${i}.png`;
    writePng(join(dir, name), 64, 48, px);
    names.push(name);
  }
  return names;
}

test('mebin: the JSON contract, recursive sorted listing, binary maps', (t) => {
  const dir = tempDir();
  const names = makeMaps(join(dir, 'maps'), 9, 3);
  writeFileSync(join(dir, 'maps', 'notes.txt'), 'ignored');
  const out = join(dir, 'out.json');
  const r = cli(['mebin', '--maps', join(dir, 'maps'), '--out', out, '--binary-out', join(dir, 'bin'), '--sample-rate', '4', '--min-interval', '4']);
  t.is(r.status, 0, r.stderr);
  const json = JSON.parse(readFileSync(out, 'utf8'));
  t.deepEqual(Object.keys(json), ['searchRange', 'device', 'maps', 'timings']);
  t.is(json.device, 'cpu');
  t.deepEqual(json.maps.map((m: { path: string }) => m.path), [...names].sort());
  for (const m of json.maps) {
    t.deepEqual(Object.keys(m), ['path', 'threshold', 'count', 'sequence', 'foreground']);
    t.true(Number.isInteger(m.threshold) && Number.isInteger(m.count) && Number.isInteger(m.foreground));
    t.is(m.sequence.length, 64);
    t.true(existsSync(join(dir, 'bin', m.path)), m.path);
  }
  t.is(typeof json.timings.mebinMsPerMap, 'number');
  t.true(json.maps.some((m: { count: number }) => m.count >= 2));
  // Same maps with the other flags: fewer thresholds, no erosion, an explicit range.
  const out2 = join(dir, 'out2.json');
  const r2 = cli(['mebin', '--maps', join(dir, 'maps'), '--out', out2, '--sample-rate', '8', '--min-interval', '2', '--no-erode', '--range', '10,250']);
  t.is(r2.status, 0, r2.stderr);
  const json2 = JSON.parse(readFileSync(out2, 'utf8'));
  t.deepEqual(json2.searchRange, [10, 250]);
  t.is(json2.maps[0].sequence.length, 32);
});

test('mebin: bad input exits 3 and leaves no output behind; usage errors exit 2', (t) => {
  const dir = tempDir();
  makeMaps(join(dir, 'maps'), 4, 5);
  writeFileSync(join(dir, 'maps', 'zz-broken.png'), encodePng(16, 16, new Array(256).fill(1)).subarray(0, 50));
  const out = join(dir, 'out.json');
  const r = cli(['mebin', '--maps', join(dir, 'maps'), '--out', out, '--binary-out', join(dir, 'bin')]);
  t.is(r.status, 3, r.stderr);
  t.regex(r.stderr, /ERR_BAD_INPUT: .*zz-broken\.png/);
  t.false(existsSync(out));
  t.deepEqual(existsSync(join(dir, 'bin')) ? readdirSync(join(dir, 'bin')) : [], []);
  t.is(cli(['mebin', '--maps', join(dir, 'maps')]).status, 2);
  t.is(cli(['mebin', '--maps', join(dir, 'maps'), '--out', out, '--range', '5']).status, 2);
  t.is(cli(['mebin', '--maps', join(dir, 'maps'), '--out', out, '--bogus', '1']).status, 2);
  t.is(cli(['mebin', '--maps', join(dir, 'nope'), '--out', out]).status, 3);
  t.is(cli(['frobnicate']).status, 2);
});

test('regions: contract fields, crops on disk, bad manifests', (t) => {
  const dir = tempDir();
  const names = makeMaps(join(dir, 'maps'), 3, 9);
  const rand = prng(1);
  names.forEach((_, i) => writePng(join(dir, `img${i}.png`), 128, 96, new Array(128 * 96 * 3).fill(0).map(() => Math.floor(rand() * 256)), 2));
  writeFileSync(join(dir, 'm.csv'), 'image,map\n' + names.map((n, i) => `img${i}.png,maps/${n}`).join('\n'));
  const out = join(dir, 'out');
  const r = cli(['regions', '--manifest', join(dir, 'm.csv'), '--out', out, '--json']);
  t.is(r.status, 0, r.stderr);
  t.is(JSON.parse(r.stdout).items, 3);
  const json = JSON.parse(readFileSync(join(out, 'regions.json'), 'utf8'));
  t.deepEqual(Object.keys(json), ['searchRange', 'device', 'items', 'timings']);
  t.deepEqual(Object.keys(json.timings), ['mebinMsPerMap', 'cropMsPerImage']);
  json.items.forEach((item: Record<string, unknown>, i: number) => {
    t.deepEqual(Object.keys(item), ['image', 'map', 'threshold', 'count', 'sequence', 'boxes', 'crops']);
    t.is(item.image, `img${i}.png`);
    for (const c of item.crops as { image: string; mask: string }[]) {
      t.true(existsSync(join(out, c.image)) && existsSync(join(out, c.mask)));
      t.regex(c.image, new RegExp(`^crops/images/0000${i}_img${i}_crop\\d+\\.png$`));
    }
  });
  t.deepEqual(readdirSync(out).sort(), ['crops', 'regions.json']);
  // An unpaired row, a missing image, a wrong header: exit 3, and the output folder is untouched.
  for (const [csv, pattern] of [
    ['image,map\nimg0.png,\n', /line 2.*cannot be paired/],
    ['image,map\nmissing.png,maps/' + names[0] + '\n', /missing\.png/],
    ['picture,heatmap\na,b\n', /expected columns 'image' and 'map'/],
  ] as const) {
    writeFileSync(join(dir, 'bad.csv'), csv);
    const bad = cli(['regions', '--manifest', join(dir, 'bad.csv'), '--out', out]);
    t.is(bad.status, 3, bad.stderr);
    t.regex(bad.stderr, pattern);
    t.deepEqual(readdirSync(out).sort(), ['crops', 'regions.json']);
  }
});

test('demo runs discover end to end on the embedded synthetic default and reports per-stage ms', (t) => {
  const out = join(tempDir(), 'demo');
  const r = cli(['demo', '--per-type', '2', '--epochs', '1', '--out', out, '--json']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /RANDOMLY INITIALISED/);
  const summary = JSON.parse(r.stdout);
  t.is(summary.k, 5);
  t.true(summary.timings.mebinMsPerMap > 0 && summary.timings.cropMsPerImage > 0 && summary.timings.training > 0);
  for (const key of ['nmi', 'ari', 'f1']) t.true(summary.metrics.anomalyncd[key] >= -1 && summary.metrics.kmeansBaseline[key] <= 1);
  t.deepEqual(readdirSync(out).sort(), ['metrics.json', 'model.safetensors', 'predictions.json', 'report.html', 'timings.json']);
  const predictions = JSON.parse(readFileSync(join(out, 'predictions.json'), 'utf8'));
  t.is(predictions.images.length, 12);
  for (const img of predictions.images) {
    t.true(Number.isInteger(img.cluster) && img.cluster >= 0 && img.cluster < 5);
    t.is(img.probabilities.length, 5);
    t.true(img.regions.length >= 1 && img.regions.every((reg: { box: number[] }) => reg.box.length === 4));
  }
});

test('the flag parser: kinds, defaults, required messages, usage errors', (t) => {
  const table = {
    out: text({ required: '--out DIR is required' }),
    'per-type': count({ default: 8 }),
    lr: positive(),
    dataset: choice(['mtd', 'mvtec'] as const),
    json: toggle(),
  } as const;
  t.deepEqual(parseFlags('x', table, ['--out', 'o', '--lr=0.5', '--json', '--dataset', 'mtd']), { out: 'o', perType: 8, lr: 0.5, dataset: 'mtd', json: true });
  t.deepEqual(parseFlags('x', table, ['--out=a=b', '--per-type', '3', '--out', 'c']), { out: 'c', perType: 3, json: false });
  const bad = (args: string[], message: RegExp) => t.throws(() => parseFlags('x', table, args), { instanceOf: InvalidArgumentError, message });
  bad([], /^--out DIR is required$/);
  bad(['--out'], /^--out needs a value$/);
  bad(['o'], /^Unexpected argument 'o'$/);
  bad(['--bogus', '1'], /^'anomalyncd x' has no option --bogus \(options: --out --per-type --lr --dataset --json\)$/);
  bad(['--json=1'], /^--json takes no value$/);
  bad(['--out', 'o', '--per-type', '-1'], /^--per-type must be a non-negative integer \(got '-1'\)$/);
  bad(['--out', 'o', '--lr', '0'], /^--lr must be a positive number \(got '0'\)$/);
  bad(['--out', 'o', '--dataset', 'x'], /^--dataset must be mtd or mvtec \(got 'x'\)$/);
  const demo = withDefaults(table, { out: 'demo' });
  t.is(parseFlags('demo', demo, []).out, 'demo');
  t.regex(flagHelp('demo', demo), /--out VALUE\s+\(required, default demo\)/);
  const help = cli(['train', '--help']);
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /--crops DIR\|regions\.json/);
});
