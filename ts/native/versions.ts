/**
 * Versions of the native libraries the addon was built against.
 * @module
 */
import { coreAddon } from './loader.js';

/** `{ libtorch, opencv }` versions of the loaded addon. */
export function nativeVersions(): { libtorch: string; opencv: string } {
  return { ...coreAddon().versions };
}
