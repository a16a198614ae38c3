// The content path: a read of a layer file maps to blocks of the layer's content stream,
// fetched through one byte-bounded LRU and one in-flight fetch per block (BlockFetcher),
// each fetch bounded in time; or read from the layer's local copy once the downloader
// has unpacked it (a different file system, so async fs there cannot deadlock us).
// Prefetching loads blocks through the same fetcher and LRU, so it shares fetches with
// readers and never holds more than the cache bound.

import type { EventEmitter } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { type BlockCache, BlockFetcher, blockKey } from '@gcfs/cfsd-client';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { LRUCache } from 'lru-cache';
import type { FuseEvents } from './events.js';

/** Blocks of a layer from the backend; ImageSession.readBlocks of @gcfs/cfsd-client fits. */
export interface RemoteBlocks {
  readBlocks(
    layerDigest: string,
    first: number,
    count: number,
    options: { signal?: AbortSignal },
  ): Promise<Array<{ index: number; data: Buffer }>>;
}

export interface ContentOptions {
  /** Blocks per backend request at most (--max_read_blocks). */
  maxReadBlocks: number;
  /** Fail (EIO) a read that needs more than maxReadBlocks blocks from the backend (--fail_on_max_read_blocks). */
  failOnMaxReadBlocks: boolean;
  /** Bound of the in-memory block cache (--max_content_cache_size_mb), in bytes. */
  cacheBytes: number;
  /** A backend fetch (and so a read waiting for it) fails after this long. */
  fetchTimeoutMs: number;
}

export const DEFAULT_CONTENT_OPTIONS: ContentOptions = {
  maxReadBlocks: 2,
  failOnMaxReadBlocks: false,
  cacheBytes: 1024 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
};

/** Where a remote read goes: the file's place in its layer's content stream. */
export interface RemoteFile {
  layer: string;
  blockSize: number;
  contentOffset: number;
  size: number;
}

/** What one prefetch call did: blocks asked for, and those it had to fetch (the rest were cached). */
export interface PrefetchResult {
  blocks: number;
  fetched: number;
  bytes: number;
}

export interface ContentStats {
  cacheBytes: number;
  cacheBlocks: number;
  inflight: number;
}

/** Counts lookups, so that each read can report its hits and misses. */
class CountingCache implements BlockCache {
  readonly lru: LRUCache<string, Buffer>;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    // A zero-byte block still takes a slot; lru-cache refuses sizes of 0.
    this.lru = new LRUCache({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (block) => Math.max(1, block.length),
    });
  }

  get(key: string): Buffer | undefined {
    const value = this.lru.get(key);
    if (value === undefined) this.misses++;
    else this.hits++;
    return value;
  }

  set(key: string, value: Buffer): void {
    this.lru.set(key, value);
  }
}

export class ContentReader {
  readonly #options: ContentOptions;
  readonly #events: EventEmitter<FuseEvents>;
  readonly #cache: CountingCache;
  readonly #fetcher: BlockFetcher;
  /** Aborted at unmount: stops prefetches and cancels backend fetches. */
  readonly #closing = new AbortController();

  /** `remoteOf` names the backend of a layer at fetch time (it may change, or go away). */
  constructor(
    options: ContentOptions,
    remoteOf: (layer: string) => RemoteBlocks | undefined,
    events: EventEmitter<FuseEvents>,
  ) {
    this.#options = options;
    this.#events = events;
    this.#cache = new CountingCache(options.cacheBytes);
    this.#fetcher = new BlockFetcher({
      maxReadBlocks: options.maxReadBlocks,
      cache: this.#cache,
      readBlocks: async (layer, first, count) => {
        const remote = remoteOf(layer);
        if (remote === undefined) {
          throw new GcfsError(ErrorCode.NotFound, `layer ${layer} has no backend`, { details: { layer } });
        }
        const started = performance.now();
        const signal = AbortSignal.any([AbortSignal.timeout(options.fetchTimeoutMs), this.#closing.signal]);
        const blocks = await withTimeout(
          remote.readBlocks(layer, first, count, { signal }),
          options.fetchTimeoutMs,
          `blocks ${first}+${count} of layer ${layer}`,
        );
        const bytes = blocks.reduce((sum, block) => sum + block.data.length, 0);
        this.#events.emit('blockFetch', {
          layer,
          first,
          count: blocks.length,
          bytes,
          ms: performance.now() - started,
        });
        return blocks;
      },
    });
  }

  stats(): ContentStats {
    return {
      cacheBytes: this.#cache.lru.calculatedSize,
      cacheBlocks: this.#cache.lru.size,
      inflight: this.#fetcher.inflight,
    };
  }

  /** Cancel fetches in flight and every prefetch (at unmount). */
  close(): void {
    this.#closing.abort();
  }

  /**
   * Load blocks `first` .. `first + count - 1` of `layer` into the cache, in requests of
   * at most maxReadBlocks, one at a time. Blocks already cached are not touched (their
   * place in the LRU stays where readers left it); a fetched block enters the LRU as a
   * read's would, so a prefetch evicts no more than reads of the same blocks. Rejects
   * with ERR_ABORTED once the mount is closing.
   */
  async prefetch(layer: string, first: number, count: number): Promise<PrefetchResult> {
    const result: PrefetchResult = { blocks: count, fetched: 0, bytes: 0 };
    let index = first;
    while (index < first + count) {
      if (this.#closing.signal.aborted) {
        throw new GcfsError(ErrorCode.Aborted, `prefetch of layer ${layer} stopped: the mount is closing`, {
          details: { layer, block: index },
        });
      }
      if (this.#cache.lru.has(blockKey(layer, index))) {
        index++;
        continue;
      }
      let run = 1;
      while (
        run < this.#options.maxReadBlocks &&
        index + run < first + count &&
        !this.#cache.lru.has(blockKey(layer, index + run))
      )
        run++;
      const blocks = await withTimeout(
        this.#fetcher.getBlocks(layer, index, run),
        this.#options.fetchTimeoutMs,
        `a prefetch of layer ${layer}`,
      );
      result.fetched += run;
      result.bytes += blocks.reduce((sum, block) => sum + block.length, 0);
      index += run;
    }
    this.#events.emit('prefetch', { layer, first, ...result });
    return result;
  }

  /** Read up to `length` bytes at `offset` of a file into `into`; returns the bytes read (0 at the end). */
  async readRemote(file: RemoteFile, into: Buffer, length: number, offset: number): Promise<number> {
    const end = Math.min(offset + length, file.size);
    if (end <= offset) return 0;
    const start = file.contentOffset + offset;
    const stop = file.contentOffset + end;
    const first = Math.floor(start / file.blockSize);
    const last = Math.floor((stop - 1) / file.blockSize);
    const count = last - first + 1;
    if (this.#options.failOnMaxReadBlocks && count > this.#options.maxReadBlocks) {
      let missing = 0;
      for (let index = first; index <= last; index++) {
        if (!this.#cache.lru.has(blockKey(file.layer, index))) missing++;
      }
      if (missing > this.#options.maxReadBlocks) {
        throw new GcfsError(
          ErrorCode.InvalidArgument,
          `a read of ${end - offset} bytes needs ${missing} blocks of layer ${file.layer}, more than --max_read_blocks=${this.#options.maxReadBlocks}`,
          { details: { layer: file.layer, blocks: missing } },
        );
      }
    }
    const hits = this.#cache.hits;
    const misses = this.#cache.misses;
    const pending = this.#fetcher.getBlocks(file.layer, first, count);
    this.#events.emit('cache', {
      layer: file.layer,
      hits: this.#cache.hits - hits,
      misses: this.#cache.misses - misses,
    });
    // Joining a fetch started by another read is bounded too.
    const blocks = await withTimeout(pending, this.#options.fetchTimeoutMs, `a read of layer ${file.layer}`);
    let written = 0;
    let at = start;
    for (const [i, block] of blocks.entries()) {
      const blockStart = (first + i) * file.blockSize;
      const from = at - blockStart;
      const to = Math.min(block.length, stop - blockStart);
      if (to <= from) break;
      written += block.copy(into, written, from, to);
      at = blockStart + to;
    }
    if (written !== end - offset) {
      throw new GcfsError(ErrorCode.BackendError, `layer ${file.layer} content ended early`, {
        details: { layer: file.layer, offset: start, expected: end - offset, got: written },
      });
    }
    return written;
  }
}

/** Read from a local file: loops over short reads until `length` bytes or the end. */
export async function readLocal(
  handle: FileHandle,
  into: Buffer,
  length: number,
  offset: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new GcfsError(ErrorCode.BackendDeadlineExceeded, `${what} did not finish within ${ms} ms`, {
            details: { timeoutMs: ms },
          }),
        ),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
