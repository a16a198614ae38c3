import type { Digest } from '@gcfs/core';
import { LRUCache } from 'lru-cache';
import type { BeginOptions, LayerFailure, LayerStore, LayerWriter, StoredLayer } from './layer-store.js';

const MAX_RUN = 1024;

export interface CachedStoreOptions {
  /** Bound on the bytes of cached blocks. */
  maxBytes: number;
}

export interface BlockCacheStats {
  /** Blocks served from the cache. */
  hits: number;
  /** Blocks read from the store below. */
  misses: number;
  /** Blocks dropped to stay within maxBytes. */
  evictions: number;
  /** Bytes and blocks cached now. */
  bytes: number;
  blocks: number;
}

/**
 * An LRU of hot blocks in front of any LayerStore; everything else passes through. Blocks are
 * keyed by a per-layer generation, bumped whenever a layer is deleted, replaced or marked
 * failed, so a stale block is never served and old entries simply age out.
 */
export class CachedStore implements LayerStore {
  readonly inner: LayerStore;
  readonly #blocks: LRUCache<string, Buffer>;
  readonly #generations = new Map<Digest, number>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(inner: LayerStore, options: CachedStoreOptions) {
    this.inner = inner;
    this.#blocks = new LRUCache({
      maxSize: options.maxBytes,
      // lru-cache wants positive sizes; an empty block still costs its key.
      sizeCalculation: (block) => Math.max(1, block.length),
      dispose: (_block, _key, reason) => {
        if (reason === 'evict') this.#evictions++;
      },
    });
  }

  stats(): BlockCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      bytes: this.#blocks.calculatedSize,
      blocks: this.#blocks.size,
    };
  }

  get(digest: Digest): Promise<StoredLayer | undefined> {
    return this.inner.get(digest);
  }

  async readBlocks(digest: Digest, first: number, count: number): Promise<Buffer[]> {
    // Nothing to look up, or a bad range: the store below validates and answers NotFound.
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count <= 0) {
      return this.inner.readBlocks(digest, first, count);
    }
    for (;;) {
      const generation = this.#generations.get(digest) ?? 0;
      const blocks = await this.#read(digest, generation, first, count);
      // A replace while we read may have given us blocks of both copies: read again.
      if ((this.#generations.get(digest) ?? 0) === generation) return blocks;
    }
  }

  async #read(digest: Digest, generation: number, first: number, count: number): Promise<Buffer[]> {
    const key = (i: number) => `${digest}/${generation}/${i}`;
    const out: Buffer[] = [];
    const end = first + count;
    let i = first;
    while (i < end) {
      const hit = this.#blocks.get(key(i));
      if (hit !== undefined) {
        this.#hits++;
        out.push(hit);
        i++;
        continue;
      }
      // Read the run of missing blocks in one call; capped, since count may exceed the layer.
      let runEnd = i + 1;
      while (runEnd < end && runEnd - i < MAX_RUN && !this.#blocks.has(key(runEnd))) runEnd++;
      const read = await this.inner.readBlocks(digest, i, runEnd - i);
      this.#misses += read.length;
      // A delete, replace or failure while we read: return the bytes but do not cache them.
      const current = (this.#generations.get(digest) ?? 0) === generation;
      read.forEach((block, j) => {
        if (current) this.#blocks.set(key(i + j), block);
        out.push(block);
      });
      if (read.length < runEnd - i) break; // the layer ends here
      i = runEnd;
    }
    return out;
  }

  failure(digest: Digest): Promise<LayerFailure | undefined> {
    return this.inner.failure(digest);
  }

  async markFailed(digest: Digest, reason: string): Promise<void> {
    this.#invalidate(digest);
    await this.inner.markFailed(digest, reason);
  }

  clearFailure(digest: Digest): Promise<void> {
    return this.inner.clearFailure(digest);
  }

  async begin(digest: Digest, options: BeginOptions = {}): Promise<LayerWriter> {
    const writer = await this.inner.begin(digest, options);
    if (!options.replace) return writer;
    return {
      appendBlock: (data) => writer.appendBlock(data),
      // Bumped once the new copy is in: blocks cached before (even by a read that finished
      // during the swap) are of the old copy and never served again.
      commit: (index) => writer.commit(index).finally(() => this.#invalidate(digest)),
      abort: () => writer.abort(),
    };
  }

  async delete(digest: Digest): Promise<void> {
    this.#invalidate(digest);
    await this.inner.delete(digest);
  }

  list(): Promise<Digest[]> {
    return this.inner.list();
  }

  async close(): Promise<void> {
    this.#blocks.clear();
    await this.inner.close();
  }

  #invalidate(digest: Digest): void {
    this.#generations.set(digest, (this.#generations.get(digest) ?? 0) + 1);
  }
}
