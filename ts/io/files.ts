/**
 * File-system helpers: atomic writes, staged output folders, recursive map
 * listing and manifest CSVs.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BadInputError, InvalidArgumentError, IoError } from '../core/errors.js';

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
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new IoError(`Cannot write '${path}': ${(e as Error).message}`, { cause: e });
  }
}

/** A hidden staging folder inside `outDir`; `commit` moves its entries into place, `discard` removes it. */
export async function stagingDir(outDir: string): Promise<{ path: string; commit(): Promise<void>; discard(): Promise<void> }> {
  const path = join(outDir, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw new IoError(`Cannot create output folder '${outDir}': ${(e as Error).message}`, { cause: e });
  }
  return {
    path,
    async commit() {
      for (const entry of await readdir(path)) {
        const target = join(outDir, entry);
        await rm(target, { recursive: true, force: true });
        await rename(join(path, entry), target);
      }
      await rm(path, { recursive: true, force: true });
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
