// Prefetching an image (--enable_prefetching): cfsd's prefetch report lists the blocks
// containers of the image read while starting, in the order they were first needed. They
// are loaded into the FUSE content cache in the background, in that order, a few requests
// at a time, skipping layers already local, and no more than a budget (half the content
// cache by default) so that prefetching never flushes what readers use.

import { describeError, type Logger } from '@gcfs/core';
import type { SessionLike } from './sessions.js';

/** Loads blocks into the content cache (the FUSE mount's prefetch). */
export type PrefetchBlocks = (layer: string, first: number, count: number) => Promise<{ bytes: number }>;

export interface ImagePrefetchOptions {
  prefetch: PrefetchBlocks;
  /** False for layers served from local copies (or gone): nothing to prefetch there. */
  streamed: (layer: string) => boolean;
  /** Bytes fetched per image at most. */
  budgetBytes: number;
  /** Requests in flight at once (default 3). */
  concurrency?: number;
  logger: Logger;
}

/** Blocks per prefetch request: small enough that the budget is not overshot by much. */
const CHUNK_BLOCKS = 16;

interface Chunk {
  layer: string;
  first: number;
  count: number;
}

function chunksOf(
  ranges: ReadonlyArray<{ layerDigest: string; firstBlock: number; count: number }>,
): Chunk[] {
  const chunks: Chunk[] = [];
  for (const range of ranges) {
    for (let first = range.firstBlock; first < range.firstBlock + range.count; first += CHUNK_BLOCKS) {
      const count = Math.min(CHUNK_BLOCKS, range.firstBlock + range.count - first);
      chunks.push({ layer: range.layerDigest, first, count });
    }
  }
  return chunks;
}

/**
 * Ask cfsd for the image's prefetch report and load its blocks. Without a report (no
 * node reported reads yet) it logs the error GKE's gcfsd logs; it never throws.
 */
export async function prefetchImage(
  name: string,
  session: Pick<SessionLike, 'prefetchReport'>,
  options: ImagePrefetchOptions,
): Promise<void> {
  const { logger } = options;
  const fields = { imageName: name, module: 'filesystem_lib' };
  try {
    const report = await session.prefetchReport();
    if (report === undefined) {
      logger.error('Prefetching for image failed', {
        ...fields,
        error: `getting prefetch image report for imageName=${JSON.stringify(name)} failed: rpc error: code = FailedPrecondition desc = Precondition check failed.`,
      });
      return;
    }
    const chunks = chunksOf(report.ranges);
    let next = 0;
    let bytes = 0;
    let blocks = 0;
    // Workers take chunks in report order; the budget stops new requests, not running ones,
    // and so does a failed one (the mount is going away, or cfsd is).
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (next < chunks.length && bytes < options.budgetBytes && failure === undefined) {
        const chunk = chunks[next++]!;
        if (!options.streamed(chunk.layer)) continue;
        try {
          bytes += (await options.prefetch(chunk.layer, chunk.first, chunk.count)).bytes;
          blocks += chunk.count;
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 3 }, worker));
    if (failure !== undefined) throw failure.error;
    logger.info('Prefetching for image done', {
      ...fields,
      blocks,
      bytes,
      reports: report.reports,
      truncated: next < chunks.length,
    });
  } catch (err) {
    logger.error('Prefetching for image failed', { ...fields, error: describeError(err) });
  }
}
