/**
 * Versions of the native libraries the addon was built against.
 * @module
 */
import { addon } from './native.js';

/** `{ libtorch, opencv }` versions of the loaded addon. */
export function nativeVersions(): { libtorch: string; opencv: string } {
  return { ...addon().versions };
}
