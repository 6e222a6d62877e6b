// What every bench script reads from its command line and environment: `--name value`
// flags, the repository root (benches run from dist/bench/) and the MTD dataset
// (MTD_ROOT, else ../shared/data/mtd beside the checkout).
import { join } from 'node:path';

export const args = process.argv.slice(2);

/** The value after `--name`, or undefined. */
export function flag(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export const repoRoot = new URL('../../', import.meta.url).pathname;
export const mtdRoot = process.env['MTD_ROOT'] ?? join(repoRoot, '..', 'shared', 'data', 'mtd');
