import { ErrorCode, GcfsError, quote } from '@gcfs/core';
import { baseName, joinPath, parentPath } from './paths.js';

/** `<dir>/.wh.<name>` deletes `<dir>/<name>` of the layers below. */
export const WHITEOUT_PREFIX = '.wh.';
/** `<dir>/.wh..wh..opq` hides everything the layers below have under `<dir>`. */
export const OPAQUE_MARKER = '.wh..wh..opq';
/** Names starting with this are reserved by the OCI spec; only the opaque marker is defined. */
const META_PREFIX = '.wh..wh.';

/** What a layer path means under the OCI whiteout rules. */
export type WhiteoutMeaning =
  | { kind: 'none' }
  /** `path` (the deleted one, in the same directory as the marker) is whited out. */
  | { kind: 'whiteout'; path: string }
  /** Directory `dir` is opaque. */
  | { kind: 'opaque'; dir: string };

/**
 * Classify a normalised layer path. Whatever the tar entry's type, a `.wh.` name is a marker
 * (containerd and overlay do the same); `.wh.` alone, `.wh..`, `.wh...` and unknown
 * `.wh..wh.*` names are invalid and refused.
 */
export function classifyWhiteout(path: string): WhiteoutMeaning {
  const name = baseName(path);
  if (!name.startsWith(WHITEOUT_PREFIX)) return { kind: 'none' };
  const dir = parentPath(path);
  if (name === OPAQUE_MARKER) return { kind: 'opaque', dir };
  const target = name.slice(WHITEOUT_PREFIX.length);
  if (name.startsWith(META_PREFIX) || target === '' || target === '.' || target === '..') {
    throw new GcfsError(ErrorCode.BadLayer, `invalid whiteout ${quote(path)}`, {
      hint: `only ${WHITEOUT_PREFIX}<name> and ${OPAQUE_MARKER} are defined by the OCI image spec`,
      details: { path },
    });
  }
  return { kind: 'whiteout', path: joinPath(dir, target) };
}

/** The marker's path for whiting out `path` (for writers and overlay conversions). */
export function whiteoutMarkerPath(path: string): string {
  return joinPath(parentPath(path), `${WHITEOUT_PREFIX}${baseName(path)}`);
}

/** The marker's path making directory `dir` opaque. */
export function opaqueMarkerPath(dir: string): string {
  return joinPath(dir, OPAQUE_MARKER);
}
