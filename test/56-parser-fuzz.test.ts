// The parsers written in TypeScript under a seeded mutation fuzzer (issue 10 item 2;
// test/fuzz/parsers.ts): .npy, PNG decoding and headers, image sizes (PNG eXIf, JPEG
// SOF/Exif), TIFF map headers, the CSV manifest and MVTec AD / MTD folders. Every
// outcome is a result or an AnomalyNCDError; the inputs of the bugs it found are kept
// below as regression cases. bench/parser-fuzz.ts runs each target 10^5 times.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { BadInputError, loadDataset, parseNpy } from 'anomalyncd';
import { readImageSize } from '../ts/io/datasets.js';
import { decodeGrayPng } from '../ts/io/png-decode.js';
import { pngChunk } from '../ts/io/png.js';
import { fuzzTarget, parserTargets, scratchDir } from './fuzz/parsers.js';
import { tempDir } from './helpers.js';

const EXECS = 2500;

test.serial(`each TS parser target, ${EXECS} mutated inputs: results or typed errors only, no hang`, async (t) => {
  const dir = scratchDir();
  try {
    for (const target of parserTargets(dir)) {
      const s = await fuzzTarget(target, 20261129, EXECS);
      t.is(s.execs, EXECS);
      t.deepEqual(s.failures, [], `${target.name}: ${JSON.stringify(s.failures.slice(0, 3))}`);
      // The fuzzer gets past the first check: several distinct outcomes, and the seeds parse.
      t.true(s.outcomes >= 5, `${target.name}: ${s.outcomes} outcome classes`);
      t.true(s.ok >= 2, `${target.name}: ${s.ok} inputs parsed`);
      t.true(s.slowestMs < 5000, `${target.name}: slowest execution ${s.slowestMs} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const ihdr = (w: number, h: number) => {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = 8;
  return pngChunk('IHDR', d);
};

test.serial('regression: a PNG eXIf chunk declaring 4 GiB no longer aborts the process in fs.read', async (t) => {
  // Found by the fuzzer: readImageSize allocated the chunk's declared length and
  // fs.read asserted (a process abort, not an exception).
  const exif = Buffer.alloc(12);
  exif.writeUInt32BE(0xffffffff, 0);
  exif.write('eXIf', 4, 'latin1');
  const path = join(tempDir(), 'exif.png');
  writeFileSync(path, Buffer.concat([SIG, ihdr(3, 2), exif]));
  t.deepEqual(await readImageSize(path), { width: 3, height: 2 });
});

test.serial('regression: a .npy descr naming an Object.prototype key is a BadInputError', (t) => {
  for (const descr of ['toString', 'constructor', '__proto__', 'valueOf']) {
    const h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (2,), }`.padEnd(117, ' ') + '\n';
    const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    head.writeUInt16LE(h.length, 8);
    t.throws(() => parseNpy(Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.alloc(64)])), { instanceOf: BadInputError, message: /dtype .* is not supported/ });
  }
});

test.serial('regression: a PNG whose image data inflates far beyond its size is refused without inflating it all', (t) => {
  // 1x1 gray with 16 MiB of zeros in IDAT (the fuzz finding used 512 MiB: 19 s, 600 MB).
  const bomb = Buffer.concat([SIG, ihdr(1, 1), pngChunk('IDAT', deflateSync(Buffer.alloc(16 << 20))), pngChunk('IEND', Buffer.alloc(0))]);
  const t0 = performance.now();
  t.throws(() => decodeGrayPng(bomb, 'bomb'), { instanceOf: BadInputError, message: /inflates to more than the 2 bytes/ });
  t.true(performance.now() - t0 < 2000);
});

test.serial('regression: a BigTIFF map with a 2^40-entry IFD is a BadInputError, not a 2^40-byte allocation', async (t) => {
  const dir = tempDir();
  const tiff = Buffer.alloc(32);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(43, 2);
  tiff.writeUInt16LE(8, 4);
  tiff.writeBigUInt64LE(16n, 8);
  tiff.writeBigUInt64LE(1n << 40n, 16);
  writeFileSync(join(dir, 'map.tif'), tiff);
  writeFileSync(join(dir, 'm.csv'), 'image,map\nimg.png,map.tif\n');
  await t.throwsAsync(loadDataset({ kind: 'manifest', path: join(dir, 'm.csv') }), { instanceOf: BadInputError, message: /not a readable TIFF.*IFD of/ });
});
