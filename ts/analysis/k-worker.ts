/**
 * The worker thread of the K estimators (`estimate-k-async.ts`): runs one
 * numeric core on samples the main thread already validated, and posts the
 * result (or a typed error's code and message) back.
 * @internal
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AnomalyNCDError } from '../core/errors.js';
import { bicCore, eigengapCore, gcdCore, silhouetteCore, stabilityCore, type KCurveResult } from './k-methods.js';
import { rowNorms, type Prepared } from './samples.js';
import type { WorkerRequest } from './estimate-k-async.js';

const req = workerData as WorkerRequest;
const noStop = (): void => {};
try {
  const x = new Float64Array(req.x);
  const p: Prepared = { x, xx: rowNorms(x, req.n, req.dim), n: req.n, dim: req.dim };
  const o = req.options;
  let r: KCurveResult;
  switch (req.method) {
    case 'silhouette':
      r = silhouetteCore(p, o.kMin, o.kMax, o.seed, o.nInit, o.maxIter, noStop);
      break;
    case 'stability':
      r = stabilityCore(p, o.kMin, o.kMax, o.seed, o.nInit, o.maxIter, o.resamples, o.fraction, o.tolerance, noStop);
      break;
    case 'eigengap':
      r = eigengapCore(p, o.kMin, o.kMax, o.neighbours, o.seed, noStop);
      break;
    case 'bic':
      r = bicCore(p, o.kMin, o.kMax, o.seed, o.nInit, o.maxIter, noStop);
      break;
    case 'gcd':
      r = gcdCore(p, req.labelledStart, req.labels, o.kMin, o.kMax, o.seed, o.nInit, o.maxIter, o.tolerance, noStop);
      break;
  }
  parentPort!.postMessage({ ok: true, k: r.k, curve: r.curve });
} catch (e) {
  parentPort!.postMessage({ ok: false, code: e instanceof AnomalyNCDError ? e.code : 'ERR_INTERNAL', message: (e as Error)?.message ?? String(e) });
}
