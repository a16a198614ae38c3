import { EventEmitter } from 'node:events';
import { type Digest, describeError } from '@gcfs/core';
import {
  type BlockMeta,
  DEFAULT_ZSTD_LEVEL,
  decodeBlock,
  deserializeLayerIndex,
  encodeBlock,
  serializeLayerIndex,
} from '@gcfs/index';
import type { ServingActivity } from './serving-activity.js';
import type { LayerStore } from './store/layer-store.js';

export interface LayerCompactorEvents {
  compacted: [{ digest: Digest; seconds: number; bytesBefore: number; bytesAfter: number }];
  /** `digest` is absent when the store could not be listed at start. */
  failed: [{ digest?: Digest; reason: string }];
}

export interface LayerCompactorOptions {
  /** zstd level of the compacted blocks (default 1, as indexing used to). */
  zstdLevel?: number;
  /** Blocks read, compressed and written per step (between two looks at the activity). */
  batchBlocks?: number;
  /**
   * Where blocks are read from (default the store): the store below a block cache, so that
   * reading whole layers does not evict the blocks containers read.
   */
  source?: LayerStore;
}

/** What the compactor needs of the parsed index cache: to drop a replaced layer's. */
export interface IndexCache {
  forget(digest: Digest): void;
}

const DEFAULT_BATCH = 16;

/**
 * Compresses layers indexed with raw blocks, in the background: a layer is served as soon as
 * it is indexed (ReadBlocks compresses on the way out meanwhile), and its stored copy is then
 * replaced by one with zstd blocks. One layer at a time, and only while cfsd has been quiet
 * for a while (ServingActivity), so a starting container never waits behind it. Stopping
 * loses nothing: the old copy stays until the new one is committed.
 */
export class LayerCompactor extends EventEmitter<LayerCompactorEvents> {
  readonly #store: LayerStore;
  readonly #source: LayerStore;
  readonly #indexes: IndexCache;
  readonly #activity: ServingActivity;
  readonly #level: number;
  readonly #batch: number;
  /** Layers to look at, oldest first; the one being compacted stays until it is done. */
  readonly #queue = new Set<Digest>();
  readonly #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(
    store: LayerStore,
    indexes: IndexCache,
    activity: ServingActivity,
    options: LayerCompactorOptions = {},
  ) {
    super();
    this.#store = store;
    this.#source = options.source ?? store;
    this.#indexes = indexes;
    this.#activity = activity;
    this.#level = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    this.#batch = Math.max(1, options.batchBlocks ?? DEFAULT_BATCH);
  }

  /** Layers waiting for compaction (or under way). */
  get pending(): number {
    return this.#queue.size;
  }

  /** Start working; `scan` first queues the stored layers still raw (after a restart). */
  start({ scan }: { scan: boolean }): void {
    this.#loop ??= (scan ? this.#scan() : Promise.resolve())
      .catch((err: unknown) => this.emit('failed', { reason: `listing the store: ${describeError(err)}` }))
      .then(() => this.#run());
  }

  /** Compact `digest` once cfsd is quiet, if its blocks are still raw then. */
  enqueue(digest: Digest): void {
    this.#queue.add(digest);
    this.#wake?.();
  }

  /** Stop; a compaction under way is abandoned and its layer keeps its raw copy. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #scan(): Promise<void> {
    for (const digest of await this.#store.list()) {
      if (this.#stop.signal.aborted) return;
      try {
        if ((await this.#rawIndex(digest)) !== undefined) this.enqueue(digest);
      } catch (err) {
        this.emit('failed', { digest, reason: describeError(err) }); // a damaged index: served as it is
      }
    }
  }

  async #run(): Promise<void> {
    const { signal } = this.#stop;
    while (!signal.aborted) {
      const [digest] = this.#queue;
      if (digest === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      try {
        await this.#compact(digest, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.emit('failed', { digest, reason: describeError(err) });
      }
      this.#queue.delete(digest);
    }
  }

  /** The layer's index while its compression is pending; undefined when absent or compacted. */
  async #rawIndex(digest: Digest) {
    const stored = await this.#store.get(digest);
    if (stored === undefined) return undefined;
    const index = deserializeLayerIndex(stored.index);
    return index.compressionPending ? index : undefined;
  }

  async #compact(digest: Digest, signal: AbortSignal): Promise<void> {
    await this.#activity.untilQuiet(signal);
    const index = await this.#rawIndex(digest);
    if (index === undefined) return;
    const started = process.hrtime.bigint();
    const writer = await this.#store.begin(digest, { replace: true });
    const blocks: BlockMeta[] = [];
    let bytesBefore = 0;
    let bytesAfter = 0;
    try {
      for (let first = 0; first < index.blocks.length; first += this.#batch) {
        await this.#activity.untilQuiet(signal);
        const stored = await this.#source.readBlocks(digest, first, this.#batch);
        // Verified as they are read: a damaged block is never compressed into a "good" one.
        const encoded = await Promise.all(
          stored.map(async (data, i) =>
            encodeBlock(await decodeBlock(first + i, data, index.blocks[first + i]!), this.#level),
          ),
        );
        for (const [i, { encoding, stored: bytes }] of encoded.entries()) {
          blocks.push({ ...index.blocks[first + i]!, encoding, compressedSize: bytes.length });
          bytesBefore += stored[i]!.length;
          bytesAfter += bytes.length;
          await writer.appendBlock(bytes);
        }
      }
      signal.throwIfAborted();
      const { compressionPending: _, ...compacted } = index;
      await writer.commit(serializeLayerIndex({ ...compacted, blocks }));
    } catch (err) {
      await writer.abort();
      throw err;
    }
    this.#indexes.forget(digest);
    this.emit('compacted', {
      digest,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      bytesBefore,
      bytesAfter,
    });
  }
}
