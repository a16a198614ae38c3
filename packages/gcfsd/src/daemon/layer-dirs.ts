// The layer cache dir as the downloader lays it out (`sha256=<hex>` once a layer is in
// place, `untar_sha256:<hex>` while it is unpacked; the names are @gcfs/core's), seen from
// the FUSE side: which layers are local, and where a local layer is.

import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, layerDirName, layerOfDirName } from '@gcfs/core';

/** `<cacheDir>/sha256=<hex>`: where the downloader publishes a complete layer. */
export function cachedLayerDir(cacheDir: string, digest: string): string {
  return join(cacheDir, layerDirName(digest));
}

/** Digests of the layers published in the cache dir (none when it does not exist). */
export async function listCachedLayers(cacheDir: string): Promise<Digest[]> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // A name of another shape (or the right shape but the wrong length) is not ours: left alone.
  return names.flatMap((name) => layerOfDirName(name) ?? []);
}

/** Whether the layer is published in the cache dir. */
export async function isCachedLayer(cacheDir: string, digest: string): Promise<boolean> {
  try {
    return (await lstat(cachedLayerDir(cacheDir, digest))).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
