import { ErrorCode, GcfsError, quote } from '@gcfs/core';

/**
 * The one path rule of a layer, shared by the tar reader, the index, FUSE and the
 * downloader: `/a`, `./a`, `a/`, `a//b` name `a` and `a/b`; the root is `''`.
 *
 * Every `..` component is refused, not only those that escape: no legitimate layer has
 * them, GNU tar refuses them as well, and resolving them lexically can disagree with
 * the kernel once a component is a symlink. A leading `/` is stripped, as GNU tar does.
 */
export function normalizeLayerPath(raw: string): string {
  if (raw.includes('\0')) throw hostilePath(raw, 'contains a NUL byte');
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw hostilePath(raw, 'has a ".." component');
    parts.push(part);
  }
  return parts.join('/');
}

function hostilePath(raw: string, problem: string): GcfsError {
  return new GcfsError(ErrorCode.HostileTar, `path ${quote(raw)} ${problem}`, {
    details: { path: raw },
  });
}

/** `a/b/c` → `a/b`; `a` → `''` (the root). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** `a/b/c` → `c`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
