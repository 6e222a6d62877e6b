/**
 * Versions of the native libraries the addons were built against, and which
 * binary was loaded from where.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawBuildInfo } from './addon-types.js';
import { loaderReport, modelAddon, type BinarySource } from './loader.js';

/** `{ libtorch, opencv }` versions of the native addons (loads the model addon, hence libtorch). */
export function nativeVersions(): { libtorch: string; opencv: string } {
  const { libtorch, opencv } = modelAddon().versions;
  return { libtorch, opencv };
}

/** The model addon's build facts (loads it). @internal */
export function nativeBuildInfo(): RawBuildInfo | undefined {
  return modelAddon().buildInfo?.();
}

/** `name@version` of a platform package, else its folder's name. @internal */
export function describeSource(source: BinarySource): string {
  if (source.kind !== 'package') return source.name;
  try {
    const pkg = JSON.parse(readFileSync(join(source.dir, 'package.json'), 'utf8')) as { version?: string };
    return `${source.name}@${pkg.version ?? '?'}`;
  } catch {
    return source.name;
  }
}

/**
 * One line naming the loaded model binary and its libraries, or undefined when the
 * model addon has not been loaded in this process (nothing is loaded for it). @internal
 */
export function loadedBinaryLine(): string | undefined {
  const model = loaderReport().loaded.find((l) => l.addon === 'anomalyncd_model');
  if (!model) return undefined;
  const info = nativeBuildInfo();
  const parts = [`native binary ${describeSource(model.source)}`];
  if (info) {
    parts.push(`libtorch ${info.libtorch}`, `OpenCV ${info.opencv}`);
    const blas = info.openblas?.config ? /OpenBLAS\s+([\d.]+)/.exec(info.openblas.config)?.[1] : undefined;
    if (info.openblas) parts.push(`OpenBLAS ${blas ?? '?'}${info.openblas.core ? ` (${info.openblas.core})` : ''}`);
    parts.push(info.cuda.libtorchCuda || info.cuda.kernels ? `CUDA build, ${info.cuda.devices} device(s)` : 'CPU build');
  } else {
    const { libtorch, opencv } = nativeVersions();
    parts.push(`libtorch ${libtorch}`, `OpenCV ${opencv}`);
  }
  return parts.join(' · ');
}
