/**
 * Runs native jobs: AbortSignal wiring, progress forwarding, option checks.
 * @internal
 * @module
 */
import { availableParallelism } from 'node:os';
import { AbortError, InvalidArgumentError } from './errors.js';
import type { RawJob, RawProgress } from '../native/addon-types.js';

/** Progress of a long operation. */
export interface Progress {
  /** Units finished (maps, images, batches). */
  done: number;
  /** Units in all. */
  total: number;
  /** Which stage reports (e.g. `mebin`, `crop`). */
  stage: string;
}

/** Options every long-running call takes. */
export interface JobOptions {
  /** Cancels the work; the Promise then rejects with an {@link AbortError}. */
  signal?: AbortSignal;
  /** Called on the main thread as work proceeds. */
  onProgress?: (progress: Progress) => void;
  /** Worker threads for this call (default: all available cores). */
  threads?: number;
}

/** Starts a native job and settles with it; aborting cancels the native work. */
export async function runJob<T>(start: (onProgress: RawProgress | undefined) => RawJob<T>, options: JobOptions): Promise<T> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw new AbortError();
  const forward: RawProgress | undefined = onProgress
    ? (done, total, stage) => {
        try {
          onProgress({ done, total, stage });
        } catch {
          // A listener's exception must not break the job.
        }
      }
    : undefined;
  const job = start(forward);
  const onAbort = () => job.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job.promise;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Resolves the `threads` option. */
export function threadCount(threads: number | undefined): number {
  if (threads === undefined) return availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024)
    throw new InvalidArgumentError(`Option 'threads' must be an integer in 1..1024 (got ${String(threads)})`);
  return threads;
}

/** Checks an optional integer option. */
export function checkInt(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(`Option '${name}' must be an integer in ${min}..${max} (got ${JSON.stringify(value)})`);
  return value;
}

/** Checks an optional finite number option. */
export function checkNumber(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new InvalidArgumentError(`Option '${name}' must be a number in ${min}..${max} (got ${JSON.stringify(value)})`);
  return value;
}

/** Checks an optional boolean option. */
export function checkBool(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`Option '${name}' must be a boolean (got ${JSON.stringify(value)})`);
  return value;
}
