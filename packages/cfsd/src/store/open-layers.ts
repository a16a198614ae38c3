import type { FileHandle } from 'node:fs/promises';
import type { Digest } from '@gcfs/core';
import { LRUCache } from 'lru-cache';
import type { StoredLayer } from './layer-store.js';

/** A loaded layer: its metadata and an open handle on its blocks file. */
export interface OpenLayer {
  layer: StoredLayer;
  blocks: FileHandle;
}

interface Entry {
  opened: Promise<OpenLayer | undefined>;
  users: number;
  evicted: boolean;
  closed: boolean;
}

/**
 * A small LRU of loaded layers. Entries are reference counted, so an evicted layer's handle
 * is closed only once its last reader is done; concurrent first uses share one load.
 */
export class OpenLayers {
  readonly #load: (digest: Digest) => Promise<OpenLayer | undefined>;
  readonly #lru: LRUCache<Digest, Entry>;

  constructor(max: number, load: (digest: Digest) => Promise<OpenLayer | undefined>) {
    this.#load = load;
    this.#lru = new LRUCache({
      max,
      dispose: (entry) => {
        entry.evicted = true;
        if (entry.users === 0) close(entry);
      },
    });
  }

  /** Run `fn` on the loaded layer; undefined (without calling fn) when the layer is absent. */
  async use<T>(digest: Digest, fn: (open: OpenLayer) => Promise<T>): Promise<T | undefined> {
    let entry = this.#lru.get(digest);
    if (entry === undefined) {
      entry = { opened: this.#load(digest), users: 0, evicted: false, closed: false };
      this.#lru.set(digest, entry);
    }
    entry.users++;
    try {
      const open = await entry.opened.catch((err: unknown) => {
        this.#forget(digest, entry);
        throw err;
      });
      if (open === undefined) {
        this.#forget(digest, entry); // absence is not cached: the layer may be committed soon
        return undefined;
      }
      return await fn(open);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) close(entry);
    }
  }

  /** Wait for a load of `digest` under way, if any (its result does not matter here). */
  async settle(digest: Digest): Promise<void> {
    await this.#lru.peek(digest)?.opened.catch(() => undefined);
  }

  /** Drop the layer's entry (after a delete or damage); readers in flight finish first. */
  evict(digest: Digest): void {
    this.#lru.delete(digest);
  }

  clear(): void {
    this.#lru.clear();
  }

  #forget(digest: Digest, entry: Entry): void {
    if (this.#lru.peek(digest) === entry) this.#lru.delete(digest);
  }
}

function close(entry: Entry): void {
  if (entry.closed) return;
  entry.closed = true;
  entry.opened.then((open) => open?.blocks.close()).catch(() => {});
}
