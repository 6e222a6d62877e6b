/**
 * Estimating the number of defect types K, several ways, off the main thread.
 *
 * | method       | input                         | criterion |
 * |--------------|-------------------------------|-----------|
 * | `silhouette` | features                      | best mean silhouette of k-means |
 * | `stability`  | features                      | agreement (ARI) of k-means over pairs of subsamples |
 * | `eigengap`   | features                      | largest gap of the normalised-Laplacian spectrum of a kNN graph |
 * | `bic`        | features                      | lowest BIC of a full-covariance Gaussian mixture (EM) |
 * | `gcd`        | features + a labelled set D^l | k-means accuracy on D^l, bounded (golden-section) search |
 * | `mass`       | a model trained with K_max    | clusters holding real mass under the mean-entropy term |
 *
 * ```ts
 * import { estimateKAsync } from 'anomalyncd';
 * const { k, curve, ms } = await estimateKAsync(features, n, dim, { method: 'eigengap', kMax: 10, signal });
 * ```
 * Feature methods run on a worker thread (the main thread only validates and
 * copies); `mass` needs a training run (`estimateKByMass`, or `discover({k:
 * 'auto', kMethod: 'mass'})`, where the model is trained anyway).
 * @module
 */
import { Worker } from 'node:worker_threads';
import { AbortError, errorFromCode, InvalidArgumentError } from '../core/errors.js';
import { defaulted, int, num, oneOf, rejectUnknownOptions, type AllKeysKnown, type Schema } from '../core/options.js';
import type { ClassLabel } from './metrics.js';
import { massCore, type KPoint } from './k-methods.js';
import type { KScore } from './estimate-k.js';
import { checkData, resolveFor, type SampleMatrix } from './samples.js';
import type { FitOptions, TrainDataset, TrainedModel } from '../stages/train.js';

/** Every K estimator; one name per method (`--k-method`). */
export const K_METHODS = ['silhouette', 'mass', 'stability', 'gcd', 'eigengap', 'bic'] as const;
/** A K estimator. */
export type KMethod = (typeof K_METHODS)[number];
/** The estimators that work on features alone (or features + a labelled set). */
export type FeatureKMethod = Exclude<KMethod, 'mass'>;
/** The methods {@link estimateKAsync} runs (all but `mass`). */
const FEATURE_K_METHODS = K_METHODS.filter((m): m is FeatureKMethod => m !== 'mass');
/**
 * The default of `discover({k: 'auto'})` and `--k auto`: the method that won `bench/k-estimation`
 * on whole datasets (bench/RESULTS.md, "K estimation on whole datasets", 2026-11-30: `bic` on
 * region descriptors, the default `kFeatures`, mean |K̂ − K| 0.60, exact on 10 of 15 runs, within
 * ±1 on 12; silhouette on descriptors 1.73).
 */
export const DEFAULT_K_METHOD: KMethod = 'bic';

/** What each method's curve scores (report axis label). */
export const K_SCORE_NAMES: Record<KMethod, string> = {
  silhouette: 'mean silhouette',
  stability: 'stability (mean ARI over resample pairs)',
  eigengap: 'eigengap λ(K+1) − λ(K)',
  bic: '−BIC of a full-covariance Gaussian mixture',
  gcd: 'accuracy on the labelled set',
  mass: 'share of images of the K-th largest cluster',
};

/** The result of every estimator. */
export interface KEstimate {
  method: KMethod;
  /** The chosen K. */
  k: number;
  /** The score of every K evaluated, ascending K (for `mass`: the share of each cluster, largest first, k = rank). */
  curve: KScore[];
  /** Wall time of the estimation (ms). */
  ms: number;
  /** What `curve[].score` is. */
  scoreName: string;
}

/** A labelled set for `gcd`: features of known-class samples and their classes. */
export interface LabelledFeatures {
  data: SampleMatrix;
  n: number;
  labels: readonly ClassLabel[];
}

/** Options of {@link estimateKAsync}. */
export interface EstimateKAsyncOptions {
  /** Default `'silhouette'` (the same default as the synchronous `estimateK`; `discover` defaults to {@link DEFAULT_K_METHOD}). */
  method?: FeatureKMethod;
  /** Smallest K tried (default 2). */
  kMin?: number;
  /** Largest K tried (default `min(10, n - 1)`). */
  kMax?: number;
  /** Seed of every random draw (default 0). */
  seed?: number;
  /** k-means restarts per clustering (default 10; `stability`: 3, it clusters 2 x `resamples` times per K; `bic`: 3 EM runs, each from the best of 10 k-means runs). */
  nInit?: number;
  /** Lloyd iterations per run (default 300). */
  maxIter?: number;
  /** `stability`: pairs of subsamples (default 10). */
  resamples?: number;
  /** `stability`: subsample size as a fraction of n (default 0.8). */
  fraction?: number;
  /** `stability`/`gcd`: the largest K whose score is within this of the best wins (default 0.02). */
  tolerance?: number;
  /** `eigengap`: neighbours of the kNN graph (default `max(5, round(log2 n) + 1)`, at most 15). */
  neighbours?: number;
  /** `gcd`: the labelled set D^l (required for `gcd`). */
  labelled?: LabelledFeatures;
  signal?: AbortSignal;
}

/** What the worker gets. @internal */
export interface WorkerRequest {
  method: FeatureKMethod;
  x: ArrayBuffer;
  n: number;
  dim: number;
  labelledStart: number;
  labels: ClassLabel[];
  options: { kMin: number; kMax: number; seed: number; nInit: number; maxIter: number; resamples: number; fraction: number; tolerance: number; neighbours: number };
}

const BASE_FIELDS = {
  method: defaulted(oneOf(FEATURE_K_METHODS, { default: 'silhouette' })),
  seed: defaulted(int({ min: 0, max: 0xffffffff, default: 0 })),
  maxIter: defaulted(int({ min: 1, max: 1e9, default: 300 })),
  resamples: defaulted(int({ min: 1, max: 1000, default: 10 })),
  fraction: defaulted(num({ min: 0, max: 1, gt: true, default: 0.8 })),
  tolerance: defaulted(num({ min: 0, max: 1, default: 0.02 })),
} satisfies Schema;

/** The {@link EstimateKAsyncOptions} outside BASE_FIELDS (their ranges depend on n). */
const ESTIMATE_OTHER_KEYS = ['kMin', 'kMax', 'nInit', 'neighbours', 'labelled', 'signal'] as const satisfies readonly (keyof EstimateKAsyncOptions)[];
const everyEstimateKeyKnown: AllKeysKnown<EstimateKAsyncOptions, keyof typeof BASE_FIELDS | (typeof ESTIMATE_OTHER_KEYS)[number]> = true;
void everyEstimateKeyKnown;

function runWorker(req: WorkerRequest, signal: AbortSignal | undefined): Promise<{ k: number; curve: KPoint[] }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const worker = new Worker(new URL('./k-worker.js', import.meta.url), { workerData: req, transferList: [req.x] });
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      reject(new AbortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    };
    worker.once('message', (m: { ok: true; k: number; curve: KPoint[] } | { ok: false; code: string; message: string }) => {
      if (settled) return;
      done();
      void worker.terminate();
      if (m.ok) resolve({ k: m.k, curve: m.curve });
      else reject(errorFromCode(m.code, m.message));
    });
    worker.once('error', (e) => {
      if (settled) return;
      done();
      reject(errorFromCode('ERR_INTERNAL', `K estimation worker failed: ${e.message}`));
    });
    worker.once('exit', (code) => {
      if (settled) return;
      done();
      reject(errorFromCode('ERR_INTERNAL', `K estimation worker exited with code ${code}`));
    });
  });
}

/**
 * Estimates K from `n x dim` features with one of the feature methods
 * (`silhouette`, `stability`, `eigengap`, `bic`, `gcd`), on a worker thread.
 * `silhouette` gives exactly the K and curve of the synchronous `estimateK`.
 *
 * @throws InvalidArgumentError for bad sizes or options (`2 <= kMin <= kMax <= n - 1`); `gcd` without `labelled`.
 * @throws BadInputError when the features hold NaN or infinity.
 * @throws AbortError when `signal` aborts (the worker is terminated).
 */
export async function estimateKAsync(data: SampleMatrix, n: number, dim: number, options: EstimateKAsyncOptions = {}): Promise<KEstimate> {
  const fn = 'estimateKAsync';
  const t0 = performance.now();
  rejectUnknownOptions(`${fn}()`, options, [...Object.keys(BASE_FIELDS), ...ESTIMATE_OTHER_KEYS]);
  const o = resolveFor(fn, BASE_FIELDS, options);
  const d = checkData(fn, data, n, dim);
  if (d.n < 3) throw new InvalidArgumentError(`${fn}: needs at least 3 samples (got n = ${d.n})`);
  const { kMin } = resolveFor(fn, { kMin: defaulted(int({ min: 2, max: d.n - 1, default: 2 })) } satisfies Schema, options);
  const { kMax } = resolveFor(fn, { kMax: defaulted(int({ min: kMin, max: d.n - 1, default: Math.max(kMin, Math.min(10, d.n - 1)) })) } satisfies Schema, options);
  const { nInit } = resolveFor(fn, { nInit: defaulted(int({ min: 1, max: 1e6, default: o.method === 'stability' || o.method === 'bic' ? 3 : 10 })) } satisfies Schema, options);
  const nbDefault = Math.min(15, Math.max(5, Math.round(Math.log2(d.n)) + 1));
  const { neighbours } = resolveFor(fn, { neighbours: defaulted(int({ min: 1, max: Math.max(1, d.n - 1), default: Math.min(nbDefault, d.n - 1) })) } satisfies Schema, options);
  let x = d.x;
  let labels: ClassLabel[] = [];
  const labelledStart = d.n;
  if (o.method === 'gcd') {
    const l = options.labelled;
    if (l === undefined || l === null || typeof l !== 'object') throw new InvalidArgumentError(`${fn}: method 'gcd' needs 'labelled' ({data, n, labels}: features of known-class samples)`);
    const ld = checkData(`${fn} (labelled)`, l.data, l.n, dim);
    if (!Array.isArray(l.labels) || l.labels.length !== ld.n) throw new InvalidArgumentError(`${fn}: 'labelled.labels' must be an array of ${ld.n} class labels`);
    labels = [...l.labels];
    if (new Set(labels).size < 1) throw new InvalidArgumentError(`${fn}: 'labelled' needs at least one class`);
    const all = new Float64Array((d.n + ld.n) * dim);
    all.set(d.x);
    all.set(ld.x, d.n * dim);
    x = all;
  }
  const total = x.length / dim;
  if (o.method === 'gcd' && kMax > total - 1) throw new InvalidArgumentError(`${fn}: kMax must be below the number of samples`);
  const r = await runWorker(
    {
      method: o.method,
      x: x.buffer as ArrayBuffer,
      n: total,
      dim,
      labelledStart,
      labels,
      options: { kMin, kMax, seed: o.seed, nInit, maxIter: o.maxIter, resamples: o.resamples, fraction: o.fraction, tolerance: o.tolerance, neighbours },
    },
    options.signal,
  );
  return { method: o.method, k: r.k, curve: r.curve, ms: performance.now() - t0, scoreName: K_SCORE_NAMES[o.method] };
}

/**
 * The `mass` count from the predictions of a model trained with `kMax`
 * clusters (one probability vector per image or crop): the clusters whose
 * share of the argmax votes is at least `threshold` (default `1 / (2 kMax)`,
 * half the uniform share; see `massCore` for the reasoning). Cheap, synchronous.
 */
export function countMassK(probabilities: readonly ArrayLike<number>[], kMax: number, threshold?: number): KEstimate {
  const t0 = performance.now();
  if (!Number.isInteger(kMax) || kMax < 1) throw new InvalidArgumentError(`countMassK: 'kMax' must be a positive integer (got ${String(kMax)})`);
  if (threshold !== undefined && !(typeof threshold === 'number' && threshold > 0 && threshold <= 1))
    throw new InvalidArgumentError(`countMassK: 'threshold' must be a number in (0, 1] (got ${String(threshold)})`);
  if (!Array.isArray(probabilities)) throw new InvalidArgumentError('countMassK: probabilities must be an array');
  const r = massCore(probabilities, kMax, threshold);
  return { method: 'mass', k: r.k, curve: r.curve, ms: performance.now() - t0, scoreName: K_SCORE_NAMES.mass };
}

/** Options of {@link estimateKByMass}: `fit`'s, with `kMax` in place of `k`. */
export interface EstimateKByMassOptions extends Omit<FitOptions, 'k'> {
  /** Clusters of the over-provisioned head (default 10). */
  kMax?: number;
  /** Share of the votes a cluster needs (default `1 / (2 kMax)`). */
  massThreshold?: number;
  /** Keep the trained model (default false: it is disposed). */
  keepModel?: boolean;
}

/**
 * The `mass` estimator end to end: trains once with `kMax` clusters (`fit`,
 * mean-entropy term as configured), predicts the unlabelled crops and counts
 * the clusters holding real mass ({@link countMassK}, per crop). `ms` includes
 * the training. `discover({k: 'auto', kMethod: 'mass'})` does the same per
 * image (region-merged) and then trains with the K found.
 */
export async function estimateKByMass(dataset: TrainDataset, options: EstimateKByMassOptions = {}): Promise<KEstimate & { model?: TrainedModel }> {
  const t0 = performance.now();
  const { kMax: kMaxIn, massThreshold, keepModel, ...fitOptions } = options;
  const kMax = kMaxIn ?? 10;
  if (!Number.isInteger(kMax) || kMax < 2 || kMax > 1000) throw new InvalidArgumentError(`estimateKByMass: 'kMax' must be an integer in 2..1000 (got ${String(kMaxIn)})`);
  const { fit } = await import('../stages/train.js');
  const model = await fit(dataset, { ...fitOptions, k: kMax });
  let est: KEstimate;
  try {
    const pred = await model.predict(dataset.unlabelled, { ...(fitOptions.threads !== undefined ? { threads: fitOptions.threads } : {}), ...(fitOptions.signal ? { signal: fitOptions.signal } : {}) });
    est = { ...countMassK(pred.probabilities, kMax, massThreshold), ms: 0 };
  } catch (e) {
    model.dispose();
    throw e;
  }
  est.ms = performance.now() - t0;
  if (keepModel) return { ...est, model };
  model.dispose();
  return est;
}
