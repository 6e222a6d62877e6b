// What every bench script reads from its command line and environment: `--name value`
// flags, the repository root (benches run from dist/bench/) and the MTD dataset
// (MTD_ROOT, else ../shared/data/mtd beside the checkout); and where --write records results.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const args = process.argv.slice(2);

/** The value after `--name`, or undefined. */
export function flag(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export const repoRoot = new URL('../../', import.meta.url).pathname;
export const mtdRoot = process.env['MTD_ROOT'] ?? join(repoRoot, '..', 'shared', 'data', 'mtd');

/** bench/RESULTS.md, where `--write` records each bench's section. */
export const resultsPath = join(repoRoot, 'bench', 'RESULTS.md');

/**
 * Records a bench's section in `path` (default bench/RESULTS.md): replaces what lies between
 * its `<!-- name:start -->` and `<!-- name:end -->` markers, or appends the section when the
 * markers are not there yet (creating the file when it is missing). `section` may carry the
 * markers itself (as printed to stdout) or not.
 */
export function writeResultsSection(name: string, section: string, path = resultsPath): void {
  const start = `<!-- ${name}:start -->`, end = `<!-- ${name}:end -->`;
  const body = section.trim();
  const block = body.startsWith(start) && body.endsWith(end) ? body : `${start}\n${body}\n${end}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark results\n';
  const a = text.indexOf(start), b = text.indexOf(end);
  writeFileSync(path, a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text.trimEnd()}\n\n${block}\n`);
}
