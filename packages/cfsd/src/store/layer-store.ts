import type { Digest } from '@gcfs/core';

/**
 * The storage contract under cfsd: per layer digest, an opaque serialised index and a run of
 * independently stored blocks. Blob-oriented and async on purpose, so that a registry-backed
 * store (the index attached to the image as an OCI artifact) can implement it later.
 */

/** Where one block lies in the layer's blocks blob. */
export interface BlockRecord {
  offset: number;
  length: number;
}

export interface StoredLayer {
  digest: Digest;
  /** The serialised index, opaque to the store. Callers must not modify it. */
  index: Buffer;
  blocks: BlockRecord[];
  /** Milliseconds since the epoch at which the layer was committed. */
  createdAt: number;
}

export interface LayerFailure {
  reason: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface LayerStore {
  /** A complete, not-failed layer, or undefined. */
  get(digest: Digest): Promise<StoredLayer | undefined>;
  /**
   * The bytes of blocks [first, first+count), clamped at the layer's end (so possibly fewer,
   * or none). Throws NotFound when the layer is absent or failed, StoreCorrupt when the stored
   * bytes are damaged (the layer is then dropped). Callers must not modify the buffers.
   */
  readBlocks(digest: Digest, first: number, count: number): Promise<Buffer[]>;
  failure(digest: Digest): Promise<LayerFailure | undefined>;
  /** Record why the layer cannot be indexed and drop any stored copy: it is never `get`-able. */
  markFailed(digest: Digest, reason: string): Promise<void>;
  clearFailure(digest: Digest): Promise<void>;
  /**
   * Start writing a layer, invisible until commit. Allowed when the layer exists already:
   * the later commit then keeps the stored copy and discards its own, unless `replace`: then
   * the commit swaps the new copy in atomically. Calls that start after that commit see only
   * the new copy; no call ever finds the layer absent because of the swap; calls under way
   * may finish on the old one. After a crash the store holds the old copy or the new one. A
   * replace of a layer no longer stored (deleted, failed) discards its copy: it never brings
   * a layer back.
   */
  begin(digest: Digest, options?: BeginOptions): Promise<LayerWriter>;
  /** Remove a layer; absent layers are fine. */
  delete(digest: Digest): Promise<void>;
  /** The layers `get` would return. */
  list(): Promise<Digest[]>;
  close(): Promise<void>;
}

export interface BeginOptions {
  /** The commit replaces the stored copy (a recompressed layer) instead of deferring to it. */
  replace?: boolean;
}

export interface LayerWriter {
  /** Append the next block; calls are applied in call order even when not awaited. */
  appendBlock(data: Buffer): Promise<void>;
  /** Make the layer visible with this index, all or nothing. */
  commit(index: Buffer): Promise<void>;
  /** Drop everything written; safe after a failed commit and safe to call twice. */
  abort(): Promise<void>;
}
