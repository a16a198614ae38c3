// The flattened view of an image (--flatten_images): its layers merged as overlayfs merges
// lower dirs. Looking a name up in a directory goes down the layers that make up that
// directory, topmost first: a whiteout (char 0:0) hides the name, a non-directory is the
// answer and hides everything below, directories merge until one is opaque. Whiteouts
// never show, and neither do overlayfs's own trusted.overlay.* xattrs. Nodes are the
// layers' own, so reads go through the same content path (or the local copy).

import { OPAQUE_VALUE, OPAQUE_XATTR } from '@gcfs/core';
import { compareBytes, type LayerNode } from './layer-tree.js';
import { S_IFCHR, S_IFDIR, S_IFMT, type Stat } from './stat.js';
import { childPath, type FsNode, leafNode, type MountedLayer } from './tree.js';

/** A layer's node at some path. */
interface Found {
  layer: MountedLayer;
  node: LayerNode;
}

/** What a path is in the merged view: a directory made of layers' dirs (topmost first), or one node. */
type Resolved = { dirs: Found[] } | Found;

const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

function isDir(node: LayerNode): boolean {
  return (node.inode.stat.mode & S_IFMT) === S_IFDIR;
}

function isWhiteout(node: LayerNode): boolean {
  return (node.inode.stat.mode & S_IFMT) === S_IFCHR && node.inode.stat.rdev === 0;
}

function isOpaque(node: LayerNode): boolean {
  return node.inode.xattrs.get(OPAQUE_XATTR)?.toString() === OPAQUE_VALUE;
}

/** `name` under the merged directory made of `dirs`, as overlayfs's lookup finds it. */
function lookupChild(dirs: readonly Found[], path: string): Resolved | undefined {
  const merged: Found[] = [];
  for (const { layer } of dirs) {
    const node = layer.tree.get(path);
    if (node === undefined) continue;
    if (isWhiteout(node)) break;
    if (!isDir(node)) return merged.length === 0 ? { layer, node } : { dirs: merged };
    merged.push({ layer, node });
    if (isOpaque(node)) break;
  }
  return merged.length === 0 ? undefined : { dirs: merged };
}

/** The path in the merged view of `layers` (bottom layer first). */
function resolve(layers: readonly MountedLayer[], path: string): Resolved | undefined {
  // overlayfs merges the roots of all lower layers, opaque or not.
  let dirs: Found[] = layers.toReversed().flatMap((layer) => {
    const node = layer.tree.get('');
    return node === undefined ? [] : [{ layer, node }];
  });
  if (dirs.length === 0) return undefined;
  if (path === '') return { dirs };
  const names = path.split('/');
  let at = '';
  for (const [i, name] of names.entries()) {
    at = childPath(at, name);
    const found = lookupChild(dirs, at);
    if (found === undefined || i === names.length - 1) return found;
    if (!('dirs' in found)) return undefined;
    dirs = found.dirs;
  }
  return undefined;
}

function visibleXattrs(xattrs: ReadonlyMap<string, Buffer>): ReadonlyMap<string, Buffer> {
  const names = [...xattrs.keys()];
  if (!names.some((name) => name.startsWith(OVERLAY_XATTR_PREFIX))) return xattrs;
  return new Map([...xattrs].filter(([name]) => !name.startsWith(OVERLAY_XATTR_PREFIX)));
}

function statOf(resolved: Resolved): Stat {
  if (!('dirs' in resolved)) return resolved.node.inode.stat;
  const top = resolved.dirs[0]!.node.inode.stat;
  // Like overlayfs: counting a merged dir's subdirs is not worth it, and nlink 1 tells find so.
  return resolved.dirs.length > 1 ? { ...top, nlink: 1 } : top;
}

function toFsNode(resolved: Resolved, path: string): FsNode {
  if ('dirs' in resolved) {
    const { dirs } = resolved;
    return {
      stat: statOf(resolved),
      xattrs: visibleXattrs(dirs[0]!.node.inode.xattrs),
      children: () => {
        const names = new Set(dirs.flatMap(({ node }) => node.children ?? []));
        const entries: Array<[string, Stat]> = [];
        for (const name of names) {
          const child = lookupChild(dirs, childPath(path, name));
          if (child !== undefined) entries.push([name, statOf(child)]);
        }
        return entries.sort(([a], [b]) => compareBytes(a, b));
      },
    };
  }
  const leaf = leafNode(resolved.layer, resolved.node);
  return { ...leaf, xattrs: visibleXattrs(resolved.node.inode.xattrs) };
}

/** The merged view's node at `path` ('' for the image's root), or undefined. */
export function flatNode(layers: readonly MountedLayer[], path: string): FsNode | undefined {
  const resolved = resolve(layers, path);
  return resolved === undefined ? undefined : toFsNode(resolved, path);
}
