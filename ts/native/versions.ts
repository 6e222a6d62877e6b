/**
 * Versions of the native libraries the addons were built against.
 * @module
 */
import { modelAddon } from './loader.js';

/** `{ libtorch, opencv }` versions of the native addons (loads the model addon, hence libtorch). */
export function nativeVersions(): { libtorch: string; opencv: string } {
  const { libtorch, opencv } = modelAddon().versions;
  return { libtorch, opencv };
}
