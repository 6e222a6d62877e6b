/**
 * Dataset loaders (METHOD.md §1, §9, T28): turn an MVTec AD category, the MTD
 * dataset as published, or a manifest CSV into a list of (image, anomaly map,
 * label) items ready for {@link binarize} / {@link extractRegions}.
 *
 * ```ts
 * import { loadDataset, extractRegions } from 'anomalyncd';
 * const ds = await loadDataset({ kind: 'mvtec', root: 'mvtec_ad', category: 'bottle', maps: 'musc_maps' });
 * const regions = await extractRegions(ds.items.map((i) => i.image), ds.items.map((i) => i.map));
 * ```
 *
 * Anomaly maps come back as {@link MapInput}s: a file path for 8-bit image
 * files (`.png`, `.tif`/`.tiff`, `.jpg`, ... read natively with OpenCV), a
 * Tensor for `.npy` arrays (uint8, float32 or float64) and for decoded or
 * synthesised ground-truth maps. Float maps of one dataset are min-max
 * normalised **together** (one global min and max over every float map passed
 * in the same `binarize`/`extractRegions` call) by the native layer, as the
 * reference's export recipe does (METHOD.md §1.4); pass all maps of a category in
 * one call and do not mix float and 8-bit maps (a warning says when a dataset
 * does).
 * @module
 */
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { BadInputError, InvalidArgumentError, IoError } from '../core/errors.js';
import { bool, required, resolveOptions, str, type Field, type Resolved, type Schema, type SchemaFor } from '../core/options.js';
import { readManifest, toPosix } from './files.js';
import type { MapInput } from '../stages/mebin.js';
import { readNpy } from './npy.js';
import { parsePngHeader, readGrayPng } from './png-decode.js';
import { Tensor } from '../core/tensor.js';


/** MVTec AD category (METHOD.md §1.2). */
export interface MvtecDatasetSpec {
  kind: 'mvtec';
  /** Dataset root holding `<category>/test/<type>/*.png`. */
  root: string;
  category: string;
  /**
   * Anomaly-map root: maps are `<maps>/<category>/<type>/<file>`. The anomaly
   * types are taken from this folder listing (sorted, minus `combined`), and
   * images and maps are paired by sorted position inside each type folder,
   * not by name (METHOD.md T28).
   */
  maps?: string;
  /**
   * Use the ground-truth masks `<root>/<category>/ground_truth/<type>/<stem>_mask.png`
   * as maps (METHOD.md §9, Table 7); `good` images get an all-zero uint8 map of the image's size.
   */
  groundTruthAsMaps?: boolean;
  /**
   * With `groundTruthAsMaps`: decode each mask and set values >= this threshold
   * to 255, the rest to 0 (default 128). `false` passes the mask files as paths.
   */
  binarizeGroundTruth?: number | false;
}

/** MTD as published (METHOD.md §1.3): `<root>/MT_*\/Imgs/<stem>.jpg` + same-stem `.png` masks. */
export interface MtdDatasetSpec {
  kind: 'mtd';
  root: string;
  /**
   * The DifferNet training list (file names of `MT_Free` images that are not
   * evaluated); default `<root>/train_filenames.txt`. `false` keeps every
   * `MT_Free` image.
   */
  trainList?: string | false;
  /** Anomaly-map root: maps are `<maps>/<MT_type>/<stem>.<png|npy|tif|tiff>` (paired by stem). */
  maps?: string;
  /** Use the ground-truth masks (same-stem `.png` beside each image) as maps. */
  groundTruthAsMaps?: boolean;
  /**
   * With `groundTruthAsMaps`: threshold for binarising the masks (default 128:
   * values >= 128 become 255, the rest 0). 388 of the 392 MTD defect masks have
   * anti-aliased grey edges, so they are not 0/255 as published. `false`
   * passes the mask files as paths, unchanged.
   */
  binarizeGroundTruth?: number | false;
}

/** A manifest CSV with header `image,map[,label]` (paths relative to the CSV's folder). */
export interface ManifestDatasetSpec {
  kind: 'manifest';
  path: string;
}

/** What {@link loadDataset} reads. */
export type DatasetSpec = MvtecDatasetSpec | MtdDatasetSpec | ManifestDatasetSpec;

/** One evaluated image with its anomaly map. */
export interface DatasetItem {
  /** Absolute path of the image. */
  image: string;
  /** The anomaly map: a file path or a Tensor [H, W] (uint8, float32 or float64). */
  map: MapInput;
  /** The class (anomaly type folder, or the manifest's label), when known. */
  label?: string;
  /** A name unique within the dataset, e.g. `<type>/<stem>`. */
  name: string;
}

/** Result of {@link loadDataset}. */
export interface Dataset {
  kind: DatasetSpec['kind'];
  /** Items in order: classes sorted, files sorted inside each class (manifest: row order). */
  items: DatasetItem[];
  /** The sorted class names, when the items carry labels. */
  classes?: string[];
  /** Things worth knowing (skipped folders, mixed map types, size mismatches, ...). */
  warnings: string[];
}

// ---------------------------------------------------------------------------
// Spec tables: each kind's fields checked and defaulted in one place.

/** `binarizeGroundTruth`: an integer threshold 1..255, or `false` for the mask files as they are. */
const gtThreshold: Field<number | false> = {
  default: 128,
  doc: 'Threshold binarising ground-truth masks used as maps, or false.',
  check(v, name) {
    if (v === false) return false;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 255)
      throw new InvalidArgumentError(`Option '${name}' must be an integer 1..255 or false (got ${JSON.stringify(v)})`);
    return v;
  },
};

/** The fields MVTec AD and MTD share. */
const MAP_SOURCE_SPEC = {
  root: required(str({ required: true, doc: 'Dataset root.' })),
  maps: str({ doc: 'Anomaly-map root.' }),
  groundTruthAsMaps: bool({ default: false, doc: 'Use the ground-truth masks as maps.' }),
  binarizeGroundTruth: gtThreshold,
};

/** The table of {@link MvtecDatasetSpec}. @internal */
export const MVTEC_SPEC = {
  ...MAP_SOURCE_SPEC,
  category: {
    required: true as const,
    doc: 'Category folder name.',
    check(v: unknown): string {
      if (typeof v !== 'string' || v.length === 0 || /[\\/]/.test(v))
        throw new InvalidArgumentError(`MVTec dataset needs a 'category' folder name (got ${JSON.stringify(v)})`);
      return v;
    },
  } satisfies Field<string>,
} satisfies SchemaFor<Omit<MvtecDatasetSpec, 'kind'>>;

/** The table of {@link MtdDatasetSpec}. @internal */
export const MTD_SPEC = {
  ...MAP_SOURCE_SPEC,
  trainList: {
    doc: 'The DifferNet training list, or false.',
    check(v: unknown, name: string): string | false {
      if (v === false || (typeof v === 'string' && v.length > 0)) return v;
      throw new InvalidArgumentError(`Option '${name}' must be a file path or false (got ${JSON.stringify(v)})`);
    },
  } satisfies Field<string | false>,
} satisfies SchemaFor<Omit<MtdDatasetSpec, 'kind'>>;

/** The table of {@link ManifestDatasetSpec}. @internal */
export const MANIFEST_SPEC = {
  path: required(str({ required: true, doc: 'The manifest CSV.' })),
} satisfies SchemaFor<Omit<ManifestDatasetSpec, 'kind'>>;

/** Checks a spec against its table, with the data set's name before the message. */
function resolveSpec<S extends Schema>(what: string, schema: S, spec: unknown): Resolved<S> {
  try {
    return resolveOptions(schema, spec);
  } catch (e) {
    if (e instanceof InvalidArgumentError && !e.message.startsWith(what)) throw new InvalidArgumentError(`${what}: ${e.message}`);
    throw e;
  }
}

/** The map source of an MVTec AD or MTD spec: anomaly maps or ground truth, exactly one. */
function mapSource(what: string, given: MvtecDatasetSpec | MtdDatasetSpec, o: Resolved<typeof MAP_SOURCE_SPEC>): number | false {
  if (o.maps === undefined && !o.groundTruthAsMaps)
    throw new InvalidArgumentError(`${what} needs 'maps' (an anomaly-map root) or 'groundTruthAsMaps: true'`);
  if (o.maps !== undefined && o.groundTruthAsMaps) throw new InvalidArgumentError("Give either 'maps' or 'groundTruthAsMaps: true', not both");
  if (given.binarizeGroundTruth !== undefined && !o.groundTruthAsMaps)
    throw new InvalidArgumentError("Option 'binarizeGroundTruth' only applies with 'groundTruthAsMaps: true'");
  return o.binarizeGroundTruth!;
}

const IMAGE_EXTS = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff']);
const MAP_EXTS = new Set(['.png', '.npy', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp']);
/** MTD map extensions, in lookup order. */
const MTD_MAP_EXTS = ['.png', '.npy', '.tif', '.tiff', '.jpg', '.jpeg'];

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const stemOf = (file: string) => {
  const ext = extname(file);
  return ext ? file.slice(0, -ext.length) : file;
};

// ---------------------------------------------------------------------------
// Header readers

async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    throw new IoError(`Cannot read '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/** The most a header reader reads at once: headers are small, and a length field of a corrupt file is not a size to allocate. */
const MAX_HEADER_READ = 1 << 20;

/**
 * Reads up to `length` bytes at `offset` (fewer at the end of the file, none
 * when the offset lies beyond what a file can hold). Lengths are capped at
 * {@link MAX_HEADER_READ}: a corrupt length field (say 0xFFFFFFFF in a PNG
 * eXIf chunk) once allocated 4 GiB and then aborted the process in
 * `fs.read` (test/56-parser-fuzz.test.ts keeps the input).
 */
async function readAt(fh: FileHandle, offset: number, length: number, path = 'file'): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > Number.MAX_SAFE_INTEGER - MAX_HEADER_READ || !(length > 0)) return Buffer.alloc(0);
  const n = Math.min(Math.floor(length), MAX_HEADER_READ);
  const buf = Buffer.alloc(n);
  try {
    const { bytesRead } = await fh.read(buf, 0, n, offset);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw new IoError(`Cannot read '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/** EXIF orientation (tag 0x0112) from TIFF-structured bytes; 1 when absent or unreadable. */
function exifOrientation(tiff: Buffer): number {
  if (tiff.length < 8) return 1;
  const le = tiff.toString('latin1', 0, 2) === 'II';
  if (!le && tiff.toString('latin1', 0, 2) !== 'MM') return 1;
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > tiff.length) break;
    if (u16(e) === 0x0112 && u16(e + 2) === 3) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * The size of a PNG or JPEG image from its header (PNG IHDR, JPEG SOFn
 * marker), without decoding, as OpenCV would decode it: an EXIF orientation
 * of 5..8 (JPEG APP1, PNG eXIf) swaps width and height, as `cv::imread`
 * applies it.
 */
export async function readImageSize(path: string): Promise<{ width: number; height: number }> {
  const fh = await openFile(path);
  try {
    const head = await readAt(fh, 0, 64, path);
    let width: number;
    let height: number;
    let orientation = 1;
    if (head.length >= 8 && head[0] === 0x89 && head.toString('latin1', 1, 4) === 'PNG') {
      ({ width, height } = parsePngHeader(head, `'${path}'`));
      // Look for an eXIf chunk before the image data.
      let pos = 8;
      for (let guard = 0; guard < 1000; guard++) {
        const h = await readAt(fh, pos, 8, path);
        if (h.length < 8) break;
        const len = h.readUInt32BE(0);
        const type = h.toString('latin1', 4, 8);
        if (type === 'IDAT' || type === 'IEND') break;
        if (type === 'eXIf') orientation = exifOrientation(await readAt(fh, pos + 8, len, path));
        pos += 12 + len;
      }
    } else if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8) {
      let pos = 2;
      let found: { width: number; height: number } | undefined;
      for (;;) {
        const h = await readAt(fh, pos, 4, path);
        if (h.length < 2 || h[0] !== 0xff) throw new BadInputError(`'${path}': malformed JPEG (no frame header found)`);
        const marker = h[1]!;
        if (marker === 0xff) {
          pos += 1; // fill byte
          continue;
        }
        if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
          pos += 2;
          continue;
        }
        if (marker === 0xd9 || marker === 0xda || h.length < 4) break;
        const len = h.readUInt16BE(2);
        if (isSof(marker)) {
          const f = await readAt(fh, pos + 4, 5, path);
          if (f.length < 5) break;
          found = { height: f.readUInt16BE(1), width: f.readUInt16BE(3) };
          break;
        }
        if (marker === 0xe1 && len >= 16) {
          const seg = await readAt(fh, pos + 4, len - 2, path);
          if (seg.toString('latin1', 0, 6) === 'Exif\0\0') orientation = exifOrientation(seg.subarray(6));
        }
        pos += 2 + len;
      }
      if (!found) throw new BadInputError(`'${path}': malformed JPEG (no SOF frame header before the scan data)`);
      if (found.width === 0 || found.height === 0)
        throw new BadInputError(`'${path}': JPEG frame header gives size ${found.width}x${found.height} (DNL-sized JPEGs are not supported)`);
      ({ width, height } = found);
    } else throw new BadInputError(`Cannot read the size of '${path}': only PNG and JPEG headers are read`);
    return orientation >= 5 ? { width: height, height: width } : { width, height };
  } finally {
    await fh.close();
  }
}

/** BitsPerSample / SamplesPerPixel / SampleFormat of a TIFF's first image. */
interface TiffInfo {
  bitsPerSample: number[];
  samplesPerPixel: number;
  /** 1 unsigned int, 2 signed int, 3 float (TIFF tag 339; default 1). */
  sampleFormat: number;
}

async function readTiffInfo(path: string): Promise<TiffInfo> {
  const fh = await openFile(path);
  try {
    const head = await readAt(fh, 0, 16, path);
    const bad = (why: string) => new BadInputError(`'${path}' is not a readable TIFF file (${why})`);
    if (head.length < 8) throw bad('too short');
    const order = head.toString('latin1', 0, 2);
    if (order !== 'II' && order !== 'MM') throw bad('bad byte-order mark');
    const le = order === 'II';
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const magic = u16(head, 2);
    if (magic !== 42 && magic !== 43) throw bad(`magic ${magic}`);
    const big = magic === 43;
    if (big && head.length < 16) throw bad('too short');
    const ifd = big ? u64(head, 8) : u32(head, 4);
    const countBuf = await readAt(fh, ifd, big ? 8 : 2, path);
    if (countBuf.length < (big ? 8 : 2)) throw bad('IFD outside the file');
    const n = big ? u64(countBuf, 0) : u16(countBuf, 0);
    const entrySize = big ? 20 : 12;
    if (n > 4096) throw bad(`IFD of ${n} entries`);
    const entries = await readAt(fh, ifd + countBuf.length, n * entrySize, path);
    if (entries.length < n * entrySize) throw bad('truncated IFD');
    const values = async (e: number): Promise<number[]> => {
      const type = u16(entries, e + 2);
      const count = big ? u64(entries, e + 4) : u32(entries, e + 4);
      const size = type === 3 ? 2 : type === 4 ? 4 : type === 16 ? 8 : 0;
      if (size === 0 || count === 0 || count > 64) return [];
      const inline = big ? 8 : 4;
      const at = e + (big ? 12 : 8);
      const data = size * count <= inline ? entries.subarray(at, at + size * count) : await readAt(fh, big ? u64(entries, at) : u32(entries, at), size * count, path);
      const out: number[] = [];
      for (let i = 0; i + size <= data.length; i += size) out.push(size === 2 ? u16(data, i) : size === 4 ? u32(data, i) : u64(data, i));
      return out;
    };
    const info: TiffInfo = { bitsPerSample: [1], samplesPerPixel: 1, sampleFormat: 1 };
    for (let i = 0; i < n; i++) {
      const e = i * entrySize;
      const tag = u16(entries, e);
      if (tag === 258) info.bitsPerSample = await values(e);
      else if (tag === 277) info.samplesPerPixel = (await values(e))[0] ?? 1;
      else if (tag === 339) info.sampleFormat = (await values(e))[0] ?? 1;
    }
    return info;
  } finally {
    await fh.close();
  }
}

/** Refuses TIFF maps that the native 8-bit single-channel map reader cannot use, with a clear reason. */
async function checkTiffMap(path: string): Promise<void> {
  const t = await readTiffInfo(path);
  const bits = t.bitsPerSample[0] ?? 1;
  if (t.sampleFormat === 3)
    throw new BadInputError(
      `Anomaly map '${path}' is a ${bits}-bit floating-point TIFF; maps are read as 8-bit grayscale files. ` +
        'Save float maps as .npy (float32/float64; the maps of one dataset are min-max normalised together) or export them as 8-bit PNG',
    );
  if (t.samplesPerPixel !== 1) throw new BadInputError(`Anomaly map '${path}' is a TIFF with ${t.samplesPerPixel} samples per pixel; expected a single-channel (grayscale) map`);
  if (bits !== 8 || t.sampleFormat === 2)
    throw new BadInputError(`Anomaly map '${path}' is a ${bits}-bit ${t.sampleFormat === 2 ? 'signed ' : ''}TIFF; expected 8-bit unsigned grayscale (or save it as .npy)`);
}

// ---------------------------------------------------------------------------
// Maps

/** Turns a map file into a MapInput: `.npy` -> Tensor [H, W]; `.tif/.tiff` checked, then the path; others: the path. */
async function mapFromFile(path: string): Promise<MapInput> {
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') {
    const t = await readNpy(path);
    if (t.dtype !== 'uint8' && t.dtype !== 'float32' && t.dtype !== 'float64')
      throw new BadInputError(`Anomaly map '${path}' is a ${t.dtype} array; expected uint8, float32 or float64`);
    // Accept [H, W], and [1, ..., H, W] / [H, W, 1] (leading / trailing singleton axes dropped).
    const shape = [...t.shape];
    while (shape.length > 2 && shape[0] === 1) shape.shift();
    while (shape.length > 2 && shape[shape.length - 1] === 1) shape.pop();
    if (shape.length !== 2)
      throw new BadInputError(`Anomaly map '${path}' has shape [${t.shape.join(', ')}]; expected [H, W] (or [1, H, W] / [H, W, 1])`);
    return new Tensor(t.dtype, shape, t.data as never);
  }
  if (ext === '.tif' || ext === '.tiff') await checkTiffMap(path);
  return path;
}

/** A ground-truth mask as a map: thresholded Tensor, or the path. Checks the size against the image. */
async function gtMap(maskPath: string, imagePath: string, threshold: number | false, sizeMismatches: string[], empty: string[]): Promise<MapInput> {
  try {
    await stat(maskPath);
  } catch {
    throw new IoError(`Ground-truth mask '${maskPath}' (for image '${imagePath}') does not exist`);
  }
  if (threshold === false) return maskPath;
  const mask = await readGrayPng(maskPath);
  const d = mask.data;
  let any = 0;
  for (let i = 0; i < d.length; i++) any |= d[i] = d[i]! >= threshold ? 255 : 0;
  if (!any) empty.push(maskPath);
  const { width, height } = await readImageSize(imagePath);
  if (mask.shape[0] !== height || mask.shape[1] !== width)
    sizeMismatches.push(`${maskPath} is ${mask.shape[1]}x${mask.shape[0]}, image ${width}x${height}`);
  return mask;
}

function gtWarnings(sizeMismatches: string[], emptyMasks: string[], threshold: number | false, warnings: string[]): void {
  const list = (a: string[]) => `${a.slice(0, 5).join('; ')}${a.length > 5 ? '; ...' : ''}`;
  if (sizeMismatches.length > 0) warnings.push(`${sizeMismatches.length} ground-truth mask(s) differ in size from their image: ${list(sizeMismatches)}`);
  if (emptyMasks.length > 0)
    warnings.push(
      `${emptyMasks.length} ground-truth mask(s) of defect images have no pixel >= ${threshold} (an empty map: MEBin falls back to a whole-image crop): ${list(emptyMasks)}`,
    );
}

async function zeroMap(imagePath: string): Promise<Tensor<'uint8'>> {
  const { width, height } = await readImageSize(imagePath);
  return new Tensor('uint8', [height, width]);
}

// ---------------------------------------------------------------------------
// Listings

async function listDir(dir: string, what: string): Promise<{ dirs: string[]; files: string[] }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IoError(code === 'ENOENT' ? `${what} '${dir}' does not exist` : `Cannot list ${what} '${dir}': ${(e as Error).message}`, { cause: e });
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const s = await stat(join(dir, e.name)).catch(() => undefined);
      isDir = s?.isDirectory() ?? false;
      isFile = s?.isFile() ?? false;
    }
    if (isDir) dirs.push(e.name);
    else if (isFile) files.push(e.name);
  }
  return { dirs: dirs.sort(byCodeUnit), files: files.sort(byCodeUnit) };
}

const withExt = (files: string[], exts: Set<string>) => files.filter((f) => exts.has(extname(f).toLowerCase()));

function mixedWarning(items: DatasetItem[], warnings: string[]): void {
  let float = 0;
  for (const it of items) if (typeof it.map !== 'string' && it.map.dtype !== 'uint8') float++;
  if (float > 0 && float < items.length)
    warnings.push(
      `${float} of ${items.length} maps are float arrays and the rest are 8-bit: the float maps are min-max normalised together to 0..255 while 8-bit maps are used as they are, so the two kinds are not on one scale`,
    );
}

// ---------------------------------------------------------------------------
// Loaders

async function loadMvtec(given: MvtecDatasetSpec): Promise<Dataset> {
  const spec = resolveSpec('MVTec dataset', MVTEC_SPEC, given);
  const threshold = mapSource('MVTec dataset', given, spec);
  const warnings: string[] = [];
  const testDir = join(resolve(spec.root), spec.category, 'test');
  const imageTypes = (await listDir(testDir, `Test folder of category '${spec.category}'`)).dirs.filter((t) => t !== 'combined');
  const mapsDir = spec.maps !== undefined ? join(resolve(spec.maps), spec.category) : undefined;
  let types: string[];
  if (mapsDir !== undefined) {
    // METHOD.md §1.2: the types come from the anomaly-map folder listing.
    types = (await listDir(mapsDir, `Anomaly-map folder of category '${spec.category}'`)).dirs.filter((t) => t !== 'combined');
    const extra = imageTypes.filter((t) => !types.includes(t));
    if (extra.length > 0) warnings.push(`Image type folder(s) without maps skipped (types come from the map folders): ${extra.join(', ')}`);
  } else types = imageTypes;
  if (types.length === 0) throw new BadInputError(`No anomaly-type folders (other than 'combined') in '${mapsDir ?? testDir}'`);

  const items: DatasetItem[] = [];
  const sizeMismatches: string[] = [];
  const emptyMasks: string[] = [];
  for (const type of types) {
    const imageDir = join(testDir, type);
    const images = withExt((await listDir(imageDir, `Image folder for type '${type}'`)).files, IMAGE_EXTS);
    if (images.length === 0) throw new BadInputError(`Image folder '${imageDir}' holds no images`);
    let maps: MapInput[];
    if (mapsDir !== undefined) {
      const mapDir = join(mapsDir, type);
      const files = withExt((await listDir(mapDir, `Map folder for type '${type}'`)).files, MAP_EXTS);
      if (files.length !== images.length)
        throw new BadInputError(
          `Map folder '${mapDir}' holds ${files.length} maps but image folder '${imageDir}' holds ${images.length} images; images and maps are paired by sorted position, so the counts must match`,
        );
      maps = [];
      for (const f of files) maps.push(await mapFromFile(join(mapDir, f)));
    } else {
      maps = [];
      const gtDir = join(resolve(spec.root), spec.category, 'ground_truth', type);
      for (const img of images) {
        const imagePath = join(imageDir, img);
        if (type === 'good') maps.push(await zeroMap(imagePath));
        else maps.push(await gtMap(join(gtDir, `${stemOf(img)}_mask.png`), imagePath, threshold, sizeMismatches, emptyMasks));
      }
    }
    const seen = new Set<string>();
    images.forEach((img, i) => {
      let name = `${type}/${stemOf(img)}`;
      if (seen.has(name)) name = `${type}/${img}`;
      seen.add(name);
      items.push({ image: join(imageDir, img), map: maps[i]!, label: type, name });
    });
  }
  gtWarnings(sizeMismatches, emptyMasks, threshold, warnings);
  mixedWarning(items, warnings);
  return { kind: 'mvtec', items, classes: [...types], warnings };
}

async function loadMtd(given: MtdDatasetSpec): Promise<Dataset> {
  const spec = resolveSpec('MTD dataset', MTD_SPEC, given);
  const threshold = mapSource('MTD dataset', given, spec);
  const root = resolve(spec.root);
  const warnings: string[] = [];
  const classes = (await listDir(root, 'MTD root')).dirs.filter((d) => d.startsWith('MT_'));
  if (classes.length === 0) throw new BadInputError(`MTD root '${root}' holds no 'MT_*' class folders`);
  if (!classes.includes('MT_Free')) warnings.push(`MTD root '${root}' has no 'MT_Free' folder (no defect-free images)`);

  // The training list: file names of MT_Free images that are not evaluated.
  let train = new Set<string>();
  if (spec.trainList !== false) {
    const listPath = spec.trainList !== undefined ? resolve(spec.trainList) : join(root, 'train_filenames.txt');
    let text: string;
    try {
      text = await readFile(listPath, 'utf8');
    } catch (e) {
      throw new IoError(
        `Cannot read the MTD training list '${listPath}': ${(e as Error).message} (it names the MT_Free images used for training, which are not evaluated; pass 'trainList' or 'trainList: false')`,
        { cause: e },
      );
    }
    train = new Set(text.split(/\r?\n/).map((l) => basename(l.trim().replace(/\\/g, '/'))).filter(Boolean).map((f) => (extname(f) ? f : `${f}.jpg`)));
  }

  const items: DatasetItem[] = [];
  const sizeMismatches: string[] = [];
  const emptyMasks: string[] = [];
  let trainFound = 0;
  let jpegMaps = 0;
  for (const cls of classes) {
    const imgDir = join(root, cls, 'Imgs');
    const { files } = await listDir(imgDir, `MTD image folder`);
    const present = new Set(files);
    let images = files.filter((f) => extname(f).toLowerCase() === '.jpg');
    if (cls === 'MT_Free') {
      const before = images.length;
      images = images.filter((f) => !train.has(f));
      trainFound = before - images.length;
    }
    let mapFiles: Map<string, string[]> | undefined;
    let mapDir: string | undefined;
    if (spec.maps !== undefined) {
      mapDir = join(resolve(spec.maps), cls);
      mapFiles = new Map();
      const listed = await listDir(
        mapDir,
        `Map folder for class '${cls}' (MTD maps are read from <maps>/<MT_type>/<stem>.<png|npy|tif|tiff>; with the reference layout pass '<anomaly_map_path>/MTD')`,
      );
      for (const f of listed.files) {
        const ext = extname(f).toLowerCase();
        if (!MTD_MAP_EXTS.includes(ext)) continue;
        const s = stemOf(f);
        mapFiles.set(s, [...(mapFiles.get(s) ?? []), f]);
      }
    }
    for (const img of images) {
      const stem = stemOf(img);
      const imagePath = join(imgDir, img);
      let map: MapInput;
      if (mapFiles && mapDir !== undefined) {
        const candidates = mapFiles.get(stem) ?? [];
        if (candidates.length === 0) throw new BadInputError(`No anomaly map for '${imagePath}': expected '${join(mapDir, stem)}.<png|npy|tif|tiff>'`);
        if (candidates.length > 1)
          throw new BadInputError(`Several anomaly maps for '${imagePath}' in '${mapDir}': ${candidates.join(', ')}; keep one`);
        const f = candidates[0]!;
        if (['.jpg', '.jpeg'].includes(extname(f).toLowerCase())) jpegMaps++;
        map = await mapFromFile(join(mapDir, f));
      } else {
        const maskName = `${stem}.png`;
        if (present.has(maskName)) map = await gtMap(join(imgDir, maskName), imagePath, threshold, sizeMismatches, cls === 'MT_Free' ? [] : emptyMasks);
        else if (cls === 'MT_Free') map = await zeroMap(imagePath);
        else throw new IoError(`Ground-truth mask '${join(imgDir, maskName)}' (for image '${imagePath}') does not exist`);
      }
      items.push({ image: imagePath, map, label: cls, name: `${cls}/${stem}` });
    }
  }
  if (spec.trainList !== false && trainFound < train.size)
    warnings.push(`${train.size - trainFound} of ${train.size} training-list entries are not MT_Free images of '${root}' (ignored)`);
  if (jpegMaps > 0)
    warnings.push(`${jpegMaps} maps are JPEG files: lossy compression changes map values (METHOD.md §1.5); prefer PNG or .npy`);
  gtWarnings(sizeMismatches, emptyMasks, threshold, warnings);
  mixedWarning(items, warnings);
  return { kind: 'mtd', items, classes, warnings };
}

async function loadManifest(given: ManifestDatasetSpec): Promise<Dataset> {
  const spec = resolveSpec('Manifest dataset', MANIFEST_SPEC, given);
  const rows = await readManifest(resolve(spec.path));
  if (rows.length === 0) throw new BadInputError(`Manifest '${spec.path}' lists no (image, map) pairs`);
  const warnings: string[] = [];
  const items: DatasetItem[] = [];
  const seen = new Map<string, number>();
  for (const r of rows) {
    const base = toPosix(r.image).replace(/\.[^./]*$/, '');
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const item: DatasetItem = { image: r.imagePath, map: await mapFromFile(r.mapPath), name: n === 1 ? base : `${base}#${n}` };
    if (r.label !== undefined) item.label = r.label;
    items.push(item);
  }
  const labelled = items.filter((i) => i.label !== undefined).length;
  if (labelled > 0 && labelled < items.length) warnings.push(`${items.length - labelled} of ${items.length} manifest rows have no label`);
  mixedWarning(items, warnings);
  const dataset: Dataset = { kind: 'manifest', items, warnings };
  if (labelled > 0) dataset.classes = [...new Set(items.flatMap((i) => (i.label !== undefined ? [i.label] : [])))].sort(byCodeUnit);
  return dataset;
}

/**
 * Loads a dataset description into (image, map, label) items.
 *
 * - `mvtec`: `<root>/<category>/test/<type>/*` images; types sorted, `combined`
 *   excluded, taken from the map folders when `maps` is given; images and maps
 *   paired by sorted position per type folder (METHOD.md T28), a count mismatch is a
 *   {@link BadInputError} naming both folders.
 * - `mtd`: every defect image plus the `MT_Free` images not in the training
 *   list (583 on the published data), classes sorted.
 * - `manifest`: rows of a CSV `image,map[,label]`.
 *
 * `.npy` maps are read into Tensors (float maps are normalised together later,
 * see the module notes); float TIFF maps are refused with a clear error.
 */
export async function loadDataset(spec: DatasetSpec): Promise<Dataset> {
  if (typeof spec !== 'object' || spec === null) throw new InvalidArgumentError('loadDataset() needs a dataset spec object');
  switch (spec.kind) {
    case 'mvtec':
      return loadMvtec(spec);
    case 'mtd':
      return loadMtd(spec);
    case 'manifest':
      return loadManifest(spec);
    default:
      throw new InvalidArgumentError(`Unknown dataset kind ${JSON.stringify((spec as { kind?: unknown }).kind)}; expected 'mvtec', 'mtd' or 'manifest'`);
  }
}
