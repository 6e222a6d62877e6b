/**
 * Runs native jobs: AbortSignal wiring and progress forwarding (options are checked by ts/core/options.ts tables).
 * @internal
 * @module
 */
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
  // Checked before the job starts: a job started and then left unawaited (a bad signal
  // thrown on below) would reject unhandled (found by test/55-boundary-fuzz).
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError("Option 'signal' must be an AbortSignal");
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError("Option 'onProgress' must be a function");
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
