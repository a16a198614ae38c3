// Names on a node, shared by the processes that write them and the ones that read them:
// the layer cache dir (the downloader writes, gcfsd and its GC read), the FUSE mount (the
// fuse package serves, the snapshotter and tests follow its links) and the xattr overlayfs
// reads. GKE's gcfsd lays both out this way; each rule is written here once.

import { type Digest, isDigest } from './digest.js';

/** `sha256:<hex>` → `sha256=<hex>`: a layer's dir under layers/ in the mount and in the cache dir. */
export function layerDirName(digest: string): string {
  return digest.replace(':', '=');
}

/** The digest a layer dir name (`sha256=<hex>`) stands for; undefined for any other name. */
export function layerOfDirName(name: string): Digest | undefined {
  const eq = name.indexOf('=');
  const digest = `${name.slice(0, eq)}:${name.slice(eq + 1)}`;
  return eq > 0 && isDigest(digest) ? digest : undefined;
}

/** What the untar dirs' names start with (removed at the downloader's start). */
export const UNTAR_DIR_PREFIX = 'untar_';

/** `untar_sha256:<hex>`: where the downloader unpacks a layer before publishing it. */
export function untarDirName(digest: string): string {
  return `${UNTAR_DIR_PREFIX}${digest}`;
}

/** `host:5000/repo/app:v1` → `host=5000#repo#app=v1`: an image's dir under images/ (and flattened/). */
export function imageDirName(reference: string): string {
  return reference.replaceAll('/', '#').replaceAll(':', '=');
}

/** An image's symlink to a streamed layer, relative to images/<image dir>/. */
export function streamedLayerTarget(digest: string): string {
  return `../../layers/${layerDirName(digest)}`;
}

/** overlayfs hides the lower layers under a directory carrying this xattr set to OPAQUE_VALUE. */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
export const OPAQUE_VALUE = 'y';
