/**
 * What every command prints besides its result: progress bars, warnings and
 * per-stage timing tables.
 * @internal
 * @module
 */
import type { Progress } from '../core/jobs.js';

/** A one-line progress bar on stderr when it is a terminal. */
export function progressBar(label: string): ((p: Progress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return ({ done, total }) => {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
    if (done >= total) process.stderr.write('\n');
  };
}

export function warn(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}

export function timingTable(rows: [string, number][]): string {
  const width = Math.max(...rows.map(([name]) => name.length));
  return ['stage'.padEnd(width) + '  ms', ...rows.map(([name, ms]) => `${name.padEnd(width)}  ${ms.toFixed(3)}`)].join('\n');
}

/** A command: its flag table's help and its run with the words after the command name. */
export interface Command {
  readonly help: () => string;
  run(args: string[], signal: AbortSignal): Promise<void>;
}
