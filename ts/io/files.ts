/**
 * File-system helpers: atomic writes, staged output folders, recursive map
 * listing and manifest CSVs.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { AbortError, BadInputError, InvalidArgumentError, IoError } from '../core/errors.js';

/** Reads a whole file; failures become an {@link IoError} naming the file. */
export async function readFileBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new IoError(`Cannot read '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/** Writes `data` to a temp file beside `path`, then renames it into place. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('An output path must be a non-empty string');
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    // The clean-up's own failure (say ENAMETOOLONG) must not replace the typed error.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new IoError(`Cannot write '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/** A staged output folder: write into `path`, then `commit` swaps it in whole or `discard` removes it. */
export interface StagingDir {
  /** The staging folder, beside the output folder (same parent, so renames stay on one file system). */
  readonly path: string;
  /** Swaps the staged folder in as `outDir` (entries of an existing `outDir` that were not staged are kept). Throws an {@link AbortError} first when `signal` has fired. */
  commit(): Promise<void>;
  /** Removes the staging folder. */
  discard(): Promise<void>;
}

const STAGE_RE = /^(.*)\.(staging|old)-(\d+)-[0-9a-f]{8}$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Moves every entry of `from` that `to` lacks into `to`, then removes `from`. */
async function mergeInto(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from)) {
    const target = join(to, entry);
    if (!(await exists(target))) await rename(join(from, entry), target);
  }
  await rm(from, { recursive: true, force: true });
}

/**
 * Finishes or removes what a killed process left beside `outDir`: its staging
 * folders are removed (never half-committed); an `<out>.old-*` folder (killed
 * mid-swap) goes back to `outDir` when that is missing, else its entries that
 * `outDir` lacks are moved in. Folders of live processes are left alone.
 */
export async function cleanStaleStaging(outDir: string): Promise<void> {
  const parent = dirname(outDir);
  const base = basename(outDir);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    const m = STAGE_RE.exec(name);
    if (!m || m[1] !== base || processAlive(Number(m[3]))) continue;
    const full = join(parent, name);
    try {
      if (m[2] === 'staging') await rm(full, { recursive: true, force: true });
      else if (!(await exists(outDir))) await rename(full, outDir);
      else await mergeInto(full, outDir);
    } catch {
      // Another process cleaning at the same time, or no permission: not ours to fail on.
    }
  }
}

/**
 * A staging folder `<outDir>.staging-<pid>-<rand>` beside `outDir`. `commit`
 * swaps the whole folder in: the old `outDir` is renamed aside, the staged one
 * renamed into place, then the old one's entries that were not staged are moved
 * over and it is removed. A process killed at any point leaves `outDir` either
 * as it was or complete, never a mix; {@link cleanStaleStaging} (run here
 * first) tidies what it left on the next run.
 */
export async function stagingDir(outDir: string, signal?: AbortSignal): Promise<StagingDir> {
  outDir = resolve(outDir);
  const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
  const path = `${outDir}.staging-${tag()}`;
  try {
    await mkdir(dirname(outDir), { recursive: true });
    await cleanStaleStaging(outDir);
    await mkdir(path);
  } catch (e) {
    throw new IoError(`Cannot create output folder '${outDir}': ${(e as Error).message}`, { cause: e });
  }
  return {
    path,
    async commit() {
      if (signal?.aborted) throw new AbortError();
      const old = `${outDir}.old-${tag()}`;
      try {
        const hadOld = await exists(outDir);
        if (hadOld) await rename(outDir, old);
        try {
          await rename(path, outDir);
        } catch (e) {
          if (hadOld) await rename(old, outDir);
          throw e;
        }
        if (hadOld) await mergeInto(old, outDir);
      } catch (e) {
        await rm(path, { recursive: true, force: true });
        throw new IoError(`Cannot write output folder '${outDir}': ${(e as Error).message}`, { cause: e });
      }
    },
    async discard() {
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** Relative path with '/' separators. */
export function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

/** Every `.png` under `dir` (recursive), as paths relative to `dir` with '/' separators, sorted bytewise. */
export async function listPngs(dir: string): Promise<string[]> {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new IoError(`Maps folder '${dir}' does not exist`);
  }
  if (!info.isDirectory()) throw new InvalidArgumentError(`--maps '${dir}' is not a folder`);
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.png')) out.push(toPosix(relative(dir, full)));
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Splits CSV text into rows of fields (RFC 4180 quoting). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field.length === 0) quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f.length > 0)) rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f.length > 0)) rows.push(row);
  return rows;
}

/** One manifest row: paths as written and as resolved against the CSV's folder. */
export interface ManifestRow {
  image: string;
  map: string;
  imagePath: string;
  mapPath: string;
  label?: string;
}

/** Reads a manifest CSV with header `image,map[,label]`. */
export async function readManifest(csvPath: string): Promise<ManifestRow[]> {
  if (typeof csvPath !== 'string' || csvPath.length === 0) throw new InvalidArgumentError('A manifest path must be a non-empty string');
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch (e) {
    throw new IoError(`Cannot read manifest '${csvPath}': ${(e as Error).message}`, { cause: e });
  }
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  const header = rows.shift()?.map((h) => h.trim());
  if (!header) throw new BadInputError(`Manifest '${csvPath}' is empty; expected a header 'image,map'`);
  const imageCol = header.indexOf('image');
  const mapCol = header.indexOf('map');
  const labelCol = header.indexOf('label');
  if (imageCol < 0 || mapCol < 0)
    throw new BadInputError(`Manifest '${csvPath}' header is '${header.join(',')}'; expected columns 'image' and 'map'`);
  const base = dirname(resolve(csvPath));
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  return rows.map((r, i) => {
    const image = r[imageCol]?.trim() ?? '';
    const map = r[mapCol]?.trim() ?? '';
    if (!image || !map)
      throw new BadInputError(`Manifest '${csvPath}' line ${i + 2}: an image cannot be paired with a map (both 'image' and 'map' are required)`);
    const row: ManifestRow = { image, map, imagePath: at(image), mapPath: at(map) };
    if (labelCol >= 0 && r[labelCol] !== undefined && r[labelCol]!.trim() !== '') row.label = r[labelCol]!.trim();
    return row;
  });
}
