// The real MTD data through the `regions` and `mebin` commands: ground-truth
// masks as ideal maps, and detector-like noisy maps derived from them.
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binarize } from 'anomalyncd';
import { cli, mtdDir, mtdTestStems, python, tempDir } from './helpers.js';

const PER_CLASS = 7;

interface RegionsJson {
  searchRange: [number, number];
  items: {
    image: string;
    map: string;
    threshold: number;
    count: number;
    sequence: number[];
    boxes: [number, number, number, number][];
    crops: { image: string; mask: string; maskArea: number; score: number }[];
  }[];
  timings: { mebinMsPerMap: number; cropMsPerImage: number };
}

const halfEven = (v: number) => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
};

/** Reads every crop/mask PNG with OpenCV: shape, and count of 255 mask pixels. */
function inspectCrops(outDir: string, json: RegionsJson): Map<string, string> {
  const files = json.items.flatMap((it) => it.crops.flatMap((c) => [c.image, c.mask]));
  const listFile = join(outDir, '..', 'files.txt');
  writeFileSync(listFile, files.join('\n'));
  const out = python(
    `import cv2, sys, os
root = sys.argv[1]
for f in open(sys.argv[2]).read().split('\\n'):
    im = cv2.imread(os.path.join(root, f), cv2.IMREAD_UNCHANGED)
    vals = sorted(set(im.reshape(-1).tolist())) if f.startswith('crops/masks') else []
    ok = all(v in (0, 255) for v in vals)
    print(f, im.shape[0], im.shape[1], im.shape[2] if im.ndim == 3 else 1, int((im == 255).sum()) if f.startswith('crops/masks') else -1, ok)`,
    [outDir, listFile],
  );
  return new Map(out.trim().split('\n').map((l) => [l.split(' ')[0]!, l.split(' ').slice(1).join(' ')]));
}

function checkInvariants(t: import('ava').ExecutionContext, json: RegionsJson, outDir: string, rows: { image: string; map: string }[]) {
  t.is(json.items.length, rows.length);
  const crops = inspectCrops(outDir, json);
  json.items.forEach((item, i) => {
    t.is(item.image, rows[i]!.image);
    t.is(item.map, rows[i]!.map);
    t.is(item.sequence.length, 64);
    t.is(item.boxes.length, item.crops.length);
    t.true(item.crops.length >= 1 && item.crops.length <= item.count + 1, `${item.image}: ${item.crops.length} crops, est ${item.count}`);
    item.crops.forEach((c, k) => {
      const [l, tp, r, b] = item.boxes[k]!;
      const [h, w, ch, white, binary] = crops.get(c.image)!.split(' ');
      t.is(Number(h), halfEven(b) - halfEven(tp), c.image);
      t.is(Number(w), halfEven(r) - halfEven(l), c.image);
      t.is(Number(ch), 3);
      const [mh, mw, mch, mwhite, mbinary] = crops.get(c.mask)!.split(' ');
      t.deepEqual([mh, mw, mch, mbinary], [h, w, '1', 'True'], c.mask);
      t.is(Number(mwhite), c.maskArea, c.mask);
      t.is(white, '-1');
      t.is(binary, 'True');
      t.true(Number.isFinite(c.score) && c.score >= 0 && c.score < 1.2, `score ${c.score}`);
    });
    // Boxes are squares except the whole-image fallback.
    if (item.threshold !== 255) for (const [l, tp, r, b] of item.boxes) t.is(r - l, b - tp);
    // Largest first.
    const areas = item.boxes.map(([l, tp, r, b]) => (r - l) * (b - tp));
    t.deepEqual([...areas].sort((a, b) => b - a), areas);
  });
}

test('regions on MTD with ground-truth masks as maps (the ideal-detector setting)', async (t) => {
  const dir = tempDir();
  const picked = mtdTestStems(PER_CLASS);
  // MTD's defect masks carry anti-aliased grey edges (388 of its 392 defect masks are not strictly
  // 0/255), so they are thresholded at 128 first to get the ideal 0/255 maps of METHOD.md §9.
  const soft = python(
    `import cv2, sys, os
src, dst = sys.argv[1], sys.argv[2]
soft = 0
for n in sys.argv[3:]:
    m = cv2.imread(os.path.join(src, n.split('/')[0], 'Imgs', n.split('/')[1] + '.png'), cv2.IMREAD_GRAYSCALE)
    soft += int(((m > 0) & (m < 255)).any())
    os.makedirs(os.path.join(dst, n.split('/')[0]), exist_ok=True)
    cv2.imwrite(os.path.join(dst, n + '.png'), ((m >= 128) * 255).astype('uint8'))
print(soft)`,
    [mtdDir, join(dir, 'gt'), ...picked.map((p) => `${p.cls}/${p.stem}`)],
  );
  t.true(Number(soft) >= 30, 'the soft-edge observation about MTD masks still holds');
  const rows = picked.map(({ cls, stem }) => ({ image: join(mtdDir, cls, 'Imgs', `${stem}.jpg`), map: join(dir, 'gt', cls, `${stem}.png`), cls }));
  const csv = join(dir, 'manifest.csv');
  writeFileSync(csv, 'image,map\n' + rows.map((r) => `${r.image},${r.map}`).join('\n') + '\n');
  const out = join(dir, 'out');
  const r = cli(['regions', '--manifest', csv, '--out', out, '--threads', '2']);
  t.is(r.status, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, 'regions.json'), 'utf8')) as RegionsJson;
  t.deepEqual(json.searchRange, [0, 255]);
  checkInvariants(t, json, out, rows);
  let chosen = 0;
  json.items.forEach((item, i) => {
    if (rows[i]!.cls === 'MT_Free') {
      // Empty maps: fallback, one whole-image crop with an empty mask (METHOD.md §9).
      t.is(item.threshold, 255);
      t.is(item.crops.length, 1);
      t.is(item.crops[0]!.maskArea, 0);
      t.is(item.crops[0]!.score, 0);
    } else if (item.threshold !== 255) {
      // The count is 0 at 255 and constant after: index 63, raw threshold 3.
      chosen++;
      t.is(item.threshold, 3);
      t.is(item.sequence[0], 0);
      t.true(item.sequence.slice(1).every((c) => c === item.sequence[1]));
      t.true(item.crops[0]!.score >= 0.99, `${item.image} score ${item.crops[0]!.score}`);
    }
  });
  // Only defects thinner than the 6x6 erosion vanish entirely.
  t.true(chosen >= 20, `${chosen} defect maps chose a threshold: ${json.items.map((it) => it.threshold).join(",")}`);
  t.true(json.timings.mebinMsPerMap > 0 && json.timings.cropMsPerImage > 0);
});

test('regions and mebin on MTD with noisy detector-like maps (relative manifest paths)', async (t) => {
  const dir = tempDir();
  const picked = mtdTestStems(PER_CLASS);
  mkdirSync(join(dir, 'maps'));
  // Square 128x128 maps as detectors emit, blurred masks plus noise and a false blob; one global min-max.
  python(
    `import cv2, numpy as np, sys, os
src, dst = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
names = sys.argv[3:]
maps = []
for n in names:
    cls, stem = n.split('/')
    gt = cv2.imread(os.path.join(src, cls, 'Imgs', stem + '.png'), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255
    m = cv2.GaussianBlur(cv2.resize(gt, (128, 128), interpolation=cv2.INTER_AREA), (0, 0), 2.0)
    m = np.clip(3 * m, 0, 1) + 0.05 * np.abs(rng.standard_normal(m.shape))
    y, x = rng.integers(0, 128, 2)
    yy, xx = np.mgrid[:128, :128]
    m += 0.2 * rng.random() * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 50.0)
    maps.append(m)
lo, hi = min(m.min() for m in maps), max(m.max() for m in maps)
for n, m in zip(names, maps):
    os.makedirs(os.path.join(dst, n.split('/')[0]), exist_ok=True)
    cv2.imwrite(os.path.join(dst, n + '.png'), ((m - lo) / (hi - lo) * 255).astype(np.uint8))`,
    [mtdDir, join(dir, 'maps'), ...picked.map((p) => `${p.cls}/${p.stem}`)],
  );
  const rows = picked.map(({ cls, stem }) => ({ image: join(mtdDir, cls, 'Imgs', `${stem}.jpg`), map: `maps/${cls}/${stem}.png` }));
  writeFileSync(join(dir, 'manifest.csv'), 'image,map\n' + rows.map((r) => `"${r.image}",${r.map}`).join('\r\n'));
  const out = join(dir, 'out');
  const r = cli(['regions', '--manifest', join(dir, 'manifest.csv'), '--out', out]);
  t.is(r.status, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, 'regions.json'), 'utf8')) as RegionsJson;
  checkInvariants(t, json, out, rows);
  t.true(json.items.some((it) => it.count > 0 && it.threshold !== 255));

  // mebin over the same folder agrees with regions and with the per-threshold oracle.
  const mebinOut = join(dir, 'mebin.json');
  const m = cli(['mebin', '--maps', join(dir, 'maps'), '--out', mebinOut, '--binary-out', join(dir, 'bin')]);
  t.is(m.status, 0, m.stderr);
  const mebin = JSON.parse(readFileSync(mebinOut, 'utf8')) as { searchRange: number[]; maps: { path: string; threshold: number; count: number; sequence: number[]; foreground: number }[] };
  t.deepEqual(mebin.searchRange, json.searchRange);
  const sorted = [...rows.map((r) => r.map.slice('maps/'.length))].sort();
  t.deepEqual(mebin.maps.map((x) => x.path), sorted);
  const byPath = new Map(json.items.map((it) => [it.map.slice('maps/'.length), it]));
  for (const x of mebin.maps) {
    t.is(x.threshold, byPath.get(x.path)!.threshold);
    t.deepEqual(x.sequence, byPath.get(x.path)!.sequence);
  }
  const oracle = await binarize(mebin.maps.map((x) => join(dir, 'maps', x.path)), { oracle: true, returnBinary: false });
  t.deepEqual(oracle.maps.map((x) => [x.threshold, x.count, x.foreground, x.sequence.join()]), mebin.maps.map((x) => [x.threshold, x.count, x.foreground, x.sequence.join()]));
  t.deepEqual(readdirSync(join(dir, 'bin')).sort(), [...new Set(picked.map((p) => p.cls))].sort());
});
