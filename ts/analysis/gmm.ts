/**
 * Gaussian mixtures with full covariance matrices, fitted by EM, for the `bic`
 * K estimator (k-methods.ts). The model and EM of scikit-learn's
 * `GaussianMixture(covariance_type='full', init_params='kmeans')`: each restart
 * starts from a k-means clustering (hard responsibilities; here the best of 10
 * k-means runs, scikit-learn takes one), EM runs until the mean log-likelihood
 * changes by less than `tol`, and the restart with the highest log-likelihood
 * is kept. `reg` is added to every covariance's
 * diagonal; here it is relative (times the mean per-feature variance), so the
 * fit does not depend on the features' scale.
 * @internal
 * @module
 */
import { kmeansCore, DEFAULT_TOL } from './kmeans.js';
import { meanFeatureVariance, type Prepared } from './samples.js';

/** A fitted mixture. */
export interface GmmFit {
  k: number;
  weights: Float64Array;
  /** k x dim, row-major. */
  means: Float64Array;
  /** k x dim x dim, row-major. */
  covariances: Float64Array;
  /** Sum over the samples of log p(x). */
  logLikelihood: number;
  converged: boolean;
}

const LOG_2PI = Math.log(2 * Math.PI);
/** k-means runs behind each EM start. */
const KMEANS_STARTS = 10;

/** Lower Cholesky factor of a symmetric positive-definite dim x dim matrix, in place of `out`; false when not positive definite. */
function cholesky(a: Float64Array, ao: number, dim: number, out: Float64Array, oo: number): boolean {
  for (let i = 0; i < dim; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[ao + i * dim + j]!;
      for (let q = 0; q < j; q++) s -= out[oo + i * dim + q]! * out[oo + j * dim + q]!;
      if (i === j) {
        if (!(s > 0)) return false;
        out[oo + i * dim + i] = Math.sqrt(s);
      } else out[oo + i * dim + j] = s / out[oo + j * dim + j]!;
    }
  return true;
}

/** Number of free parameters of a full-covariance mixture of k components in dim dimensions. */
export function gmmParameters(k: number, dim: number): number {
  return k - 1 + k * dim + (k * dim * (dim + 1)) / 2;
}

/** Bayesian information criterion (Schwarz 1978): -2 log L + parameters x log n (lower is better). */
export function gmmBic(fit: GmmFit, n: number, dim: number): number {
  return -2 * fit.logLikelihood + gmmParameters(fit.k, dim) * Math.log(n);
}

/**
 * Fits a `k`-component full-covariance mixture: `nInit` restarts (k-means
 * seeds `seed`, `seed + 1`, ...), at most `maxIter` EM iterations each.
 */
export function fitGmm(p: Prepared, k: number, seed: number, nInit: number, maxIter: number, tol: number, reg: number): GmmFit {
  const { x, n, dim } = p;
  const meanVar = meanFeatureVariance(x, n, dim);
  const regAbs = reg * (meanVar > 0 ? meanVar : 1);

  const resp = new Float64Array(n * k);
  const weights = new Float64Array(k);
  const means = new Float64Array(k * dim);
  const cov = new Float64Array(k * dim * dim);
  const chol = new Float64Array(k * dim * dim);
  const logDet = new Float64Array(k);
  const logProb = new Float64Array(k); // one sample's, per component
  const diff = new Float64Array(dim);

  const mStep = (): void => {
    weights.fill(0);
    means.fill(0);
    cov.fill(0);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < k; c++) {
        const r = resp[i * k + c]!;
        if (r === 0) continue;
        weights[c]! += r;
        for (let t = 0; t < dim; t++) means[c * dim + t]! += r * x[i * dim + t]!;
      }
    for (let c = 0; c < k; c++) {
      // scikit-learn's 10 * eps keeps an empty component's mean finite
      weights[c]! += 10 * Number.EPSILON;
      for (let t = 0; t < dim; t++) means[c * dim + t]! /= weights[c]!;
    }
    for (let i = 0; i < n; i++)
      for (let c = 0; c < k; c++) {
        const r = resp[i * k + c]!;
        if (r === 0) continue;
        const co = c * dim * dim;
        for (let t = 0; t < dim; t++) diff[t] = x[i * dim + t]! - means[c * dim + t]!;
        for (let a = 0; a < dim; a++) {
          const ra = r * diff[a]!;
          for (let b = 0; b <= a; b++) cov[co + a * dim + b]! += ra * diff[b]!;
        }
      }
    for (let c = 0; c < k; c++) {
      const co = c * dim * dim;
      for (let a = 0; a < dim; a++) {
        for (let b = 0; b <= a; b++) {
          const v = cov[co + a * dim + b]! / weights[c]!;
          cov[co + a * dim + b] = v;
          cov[co + b * dim + a] = v;
        }
        cov[co + a * dim + a]! += regAbs;
      }
      if (!cholesky(cov, co, dim, chol, co)) throw new Error('GMM: a covariance matrix is not positive definite (reg too small)');
      let ld = 0;
      for (let a = 0; a < dim; a++) ld += Math.log(chol[co + a * dim + a]!);
      logDet[c] = 2 * ld;
    }
    for (let c = 0; c < k; c++) weights[c]! /= n;
  };

  /** Log-likelihood of every sample; fills resp with the posteriors. */
  const eStep = (): number => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      let top = -Infinity;
      for (let c = 0; c < k; c++) {
        const co = c * dim * dim;
        let maha = 0;
        // forward substitution L y = x - mu
        for (let a = 0; a < dim; a++) {
          let s = x[i * dim + a]! - means[c * dim + a]!;
          for (let b = 0; b < a; b++) s -= chol[co + a * dim + b]! * diff[b]!;
          diff[a] = s / chol[co + a * dim + a]!;
          maha += diff[a]! * diff[a]!;
        }
        const lp = Math.log(weights[c]!) - 0.5 * (dim * LOG_2PI + logDet[c]! + maha);
        logProb[c] = lp;
        if (lp > top) top = lp;
      }
      let s = 0;
      for (let c = 0; c < k; c++) s += Math.exp(logProb[c]! - top);
      const lse = top + Math.log(s);
      for (let c = 0; c < k; c++) resp[i * k + c] = Math.exp(logProb[c]! - lse);
      total += lse;
    }
    return total;
  };

  let best: GmmFit | undefined;
  for (let r = 0; r < nInit; r++) {
    // each start: the best of 10 k-means runs (a single k-means run too often merges two groups)
    const init = kmeansCore(p, k, seed + r, KMEANS_STARTS, 300, DEFAULT_TOL, 'auto').labels;
    resp.fill(0);
    for (let i = 0; i < n; i++) resp[i * k + init[i]!] = 1;
    mStep();
    let ll = -Infinity;
    let converged = false;
    for (let it = 1; it <= maxIter; it++) {
      const next = eStep() / n;
      mStep();
      const change = next - ll;
      ll = next;
      if (Math.abs(change) < tol) {
        converged = true;
        break;
      }
    }
    // the log-likelihood of the final parameters
    const logLikelihood = eStep();
    if (best === undefined || logLikelihood > best.logLikelihood)
      best = { k, weights: weights.slice(), means: means.slice(), covariances: cov.slice(), logLikelihood, converged };
  }
  return best!;
}
