import { rename, rm } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  abortError,
  type Digest,
  ErrorCode,
  GcfsError,
  isGcfsError,
  MediaType,
  toGcfsError,
} from '@gcfs/core';
import { compressionOf, decompressLayer } from '@gcfs/index';
import { clientForImage, type RegistryAccessOptions, toReference } from '@gcfs/registry';
import type { PullSecret } from '../types.js';
import { fsyncPath, fsyncTree } from './durable.js';
import type { LayerCache } from './layer-cache.js';

/** Unpack a tar stream into a new directory (the untar library's untarLayer fits). */
export type Untar = (
  tar: AsyncIterable<Uint8Array>,
  destDir: string,
  options: { signal: AbortSignal },
) => Promise<{ tarBytes: number }>;

export type { RegistryAccessOptions };

export interface LayerFetch {
  imageName: string;
  digest: Digest;
  mediaType: string;
  /** 0: ask the registry. */
  size: number;
  pullSecret: PullSecret | undefined;
}

export interface FetchContext {
  cache: LayerCache;
  registry: RegistryAccessOptions;
  untar: Untar;
  signal: AbortSignal;
  /** Compressed bytes received so far, as they arrive. */
  onBytes(total: number): void;
  /** The tree is complete and verified, about to be synced and published. */
  onUntarred(uncompressedBytes: number): void;
}

export interface FetchedLayer {
  /** Compressed bytes fetched. */
  bytes: number;
  /** Uncompressed (tar) bytes unpacked. */
  tarBytes: number;
}

/**
 * Fetch a layer blob, unpack it into the cache's untar dir, and publish it by renaming that
 * dir to the layer dir, only once the blob's digest matched (the registry stream fails at
 * its end otherwise) and the tree is on disk. Any failure leaves nothing behind.
 */
export async function fetchLayer(layer: LayerFetch, ctx: FetchContext): Promise<FetchedLayer> {
  const untarDir = ctx.cache.untarDir(layer.digest);
  const client = clientForImage(layer.imageName, layer.pullSecret ?? {}, ctx.registry);
  let bytes = 0;
  try {
    await rm(untarDir, { recursive: true, force: true });
    const reference = toReference(layer.imageName);
    const size = layer.size > 0 ? layer.size : await client.statBlob(reference, layer.digest);
    const desc = { mediaType: layer.mediaType || MediaType.OciLayerGzip, digest: layer.digest, size };
    // Refused before the blob opens: a blob stream nobody reads would fail unobserved.
    const compression = compressionOf(desc.mediaType);
    const blob = client.openBlobStream(reference, desc, { signal: ctx.signal });
    blob.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      ctx.onBytes(bytes);
    });
    const verified = finished(blob);
    verified.catch(() => {}); // observed below, once the untar is done
    // pipe(), not pipeline(): when the untar stops early the blob must live on, so that the
    // rest of it is read and its digest checked. The tar pipeline listens to the feed's
    // errors before the blob can pass one on.
    const feed = new PassThrough({ highWaterMark: 1024 * 1024 });
    const tar = decompressLayer(feed, compression);
    blob.on('error', (err) => feed.destroy(err));
    blob.pipe(feed);
    let tarBytes: number;
    try {
      ({ tarBytes } = await ctx.untar(tar, untarDir, { signal: ctx.signal }));
    } catch (err) {
      throw await blame(err, blob, feed, verified, ctx.signal);
    }
    // Whatever follows the end of the tar still counts for the digest.
    blob.unpipe(feed);
    tar.destroy();
    blob.resume();
    await verified;
    ctx.onUntarred(tarBytes);
    await fsyncTree(untarDir);
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    await rename(untarDir, ctx.cache.layerDir(layer.digest));
    await fsyncPath(ctx.cache.dir, true);
    return { bytes, tarBytes };
  } catch (err) {
    await rm(untarDir, { recursive: true, force: true, maxRetries: 3 });
    throw toGcfsError(err);
  } finally {
    await client.close();
  }
}

/**
 * The real cause of a failed untar. A corrupt blob usually breaks decompression or the tar
 * before its digest can be checked, so unless the blob itself failed, it is read to its end:
 * a digest mismatch then explains the failure better than the garbled tar did.
 */
async function blame(
  err: unknown,
  blob: Readable,
  feed: PassThrough,
  verified: Promise<void>,
  signal: AbortSignal,
): Promise<unknown> {
  if (signal.aborted) return abortError(signal);
  if (blob.errored) return blob.errored;
  blob.unpipe(feed);
  feed.destroy();
  blob.resume();
  try {
    await verified;
  } catch (blobErr) {
    if (isGcfsError(blobErr, ErrorCode.DigestMismatch) || isGcfsError(blobErr, ErrorCode.SizeMismatch)) {
      return blobErr;
    }
  }
  return err instanceof GcfsError ? err : toGcfsError(err, ErrorCode.BadLayer);
}
