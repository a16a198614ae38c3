// The layer cache dir as the downloader lays it out (`sha256=<hex>` once a layer is in
// place, `untar_sha256:<hex>` while it is unpacked), seen from the FUSE side: which
// layers are local, and the paths of a layer.

import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, digestAlgorithm, digestHex, parseDigest } from '@gcfs/core';

const LAYER_DIR_NAME = /^(sha256|sha512)=([0-9a-f]+)$/;

/** `<cacheDir>/sha256=<hex>`: where the downloader publishes a complete layer. */
export function cachedLayerDir(cacheDir: string, digest: string): string {
  const parsed = parseDigest(digest);
  return join(cacheDir, `${digestAlgorithm(parsed)}=${digestHex(parsed)}`);
}

/** `<cacheDir>/untar_sha256:<hex>`: where the downloader unpacks it first. */
export function untarLayerDir(cacheDir: string, digest: string): string {
  return join(cacheDir, `untar_${parseDigest(digest)}`);
}

/** The FUSE tree's own path of a streamed layer, relative to images/<name>/. */
export function streamedLayerTarget(digest: string): string {
  const parsed = parseDigest(digest);
  return `../../layers/${digestAlgorithm(parsed)}=${digestHex(parsed)}`;
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
  const digests: Digest[] = [];
  for (const name of names) {
    const match = LAYER_DIR_NAME.exec(name);
    if (!match) continue;
    try {
      digests.push(parseDigest(`${match[1]}:${match[2]}`));
    } catch {
      // a name of the right shape but the wrong length is not ours: leave it alone
    }
  }
  return digests;
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
