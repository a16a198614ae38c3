// One in-flight ReadBlocks per block, however many FUSE readers want it: readers that
// ask for a block already being fetched wait for that fetch instead of starting another.

import { ErrorCode, GcfsError, SingleFlight } from '@gcfs/core';
import type { DecodedBlock } from './blocks.js';

/** Where fetched blocks are kept (gcfsd plugs an LRU bounded by --max_content_cache_size_mb). */
export interface BlockCache {
  get(key: string): Buffer | undefined;
  set(key: string, value: Buffer): void;
}

/** Up to `count` verified blocks from `first`, consecutive (ImageSession.readBlocks). */
export type ReadBlocksFn = (layer: string, first: number, count: number) => Promise<DecodedBlock[]>;

export interface BlockFetcherOptions {
  readBlocks: ReadBlocksFn;
  /** Blocks per request at most (--max_read_blocks). */
  maxReadBlocks: number;
  cache?: BlockCache;
}

export function blockKey(layer: string, index: number): string {
  return `${layer}/${index}`;
}

export class BlockFetcher {
  readonly #read: ReadBlocksFn;
  readonly #maxReadBlocks: number;
  readonly #cache: BlockCache | undefined;
  readonly #inflight = new SingleFlight<string, Buffer>();

  constructor(options: BlockFetcherOptions) {
    if (!Number.isInteger(options.maxReadBlocks) || options.maxReadBlocks < 1) {
      throw new GcfsError(ErrorCode.InvalidArgument, `maxReadBlocks must be a positive integer`);
    }
    this.#read = options.readBlocks;
    this.#maxReadBlocks = options.maxReadBlocks;
    this.#cache = options.cache;
  }

  /** Blocks currently being fetched (for gauges and tests). */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Blocks `first` .. `first + count - 1` of `layer`, in order: from the cache, from a
   * fetch already in flight, or from new requests of at most maxReadBlocks consecutive
   * blocks. A failed fetch rejects every caller waiting for its blocks and is not cached.
   */
  getBlocks(layer: string, first: number, count: number): Promise<Buffer[]> {
    if (!Number.isInteger(first) || first < 0 || !Number.isInteger(count) || count < 0) {
      return Promise.reject(
        new GcfsError(ErrorCode.InvalidArgument, `invalid block range ${first}+${count} of layer ${layer}`),
      );
    }
    const blocks: Array<Buffer | Promise<Buffer>> = [];
    let runStart = first;
    let runLength = 0;
    const flush = () => {
      if (runLength > 0) blocks.push(...this.#fetch(layer, runStart, runLength));
      runLength = 0;
    };
    for (let index = first; index < first + count; index++) {
      const key = blockKey(layer, index);
      const known = this.#cache?.get(key) ?? this.#inflight.get(key);
      if (known !== undefined) {
        flush();
        blocks.push(known);
        continue;
      }
      if (runLength === 0) runStart = index;
      runLength++;
      if (runLength === this.#maxReadBlocks) flush();
    }
    flush();
    return Promise.all(blocks);
  }

  /** Start fetching `count` consecutive blocks; one promise per block, registered in flight at once. */
  #fetch(layer: string, first: number, count: number): Array<Promise<Buffer>> {
    const waiters = Array.from({ length: count }, (_, i) => {
      const waiter = Promise.withResolvers<Buffer>();
      this.#inflight.share(blockKey(layer, first + i), waiter.promise);
      return waiter;
    });
    void this.#load(layer, first, waiters);
    return waiters.map((waiter) => waiter.promise);
  }

  async #load(layer: string, first: number, waiters: Array<PromiseWithResolvers<Buffer>>): Promise<void> {
    let done = 0;
    try {
      // cfsd may answer with fewer blocks than asked for (its own maximum): ask for the rest.
      while (done < waiters.length) {
        const start = first + done;
        const received = await this.#read(layer, start, waiters.length - done);
        if (received.length === 0) {
          throw new GcfsError(
            ErrorCode.InvalidArgument,
            `block ${start} is beyond the end of layer ${layer}`,
          );
        }
        for (const block of received.slice(0, waiters.length - done)) {
          const index = first + done;
          if (block.index !== index) {
            throw new GcfsError(
              ErrorCode.BackendError,
              `got block ${block.index} for block ${index} of ${layer}`,
            );
          }
          const key = blockKey(layer, index);
          // Cached before it settles (and leaves the flights), so that no reader misses both.
          this.#cache?.set(key, block.data);
          waiters[done]!.resolve(block.data);
          done++;
        }
      }
    } catch (err) {
      for (let i = done; i < waiters.length; i++) waiters[i]!.reject(err);
    }
  }
}
