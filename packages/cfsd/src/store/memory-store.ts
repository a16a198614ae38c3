import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';
import { LRUCache } from 'lru-cache';
import { clampRange, layerNotFound, recordsFromLengths, totalLength } from './blocks.js';
import type { BeginOptions, LayerFailure, LayerStore, LayerWriter, StoredLayer } from './layer-store.js';
import { OrderedWriter } from './ordered-writer.js';

export interface MemoryStoreOptions {
  /** Bound on the bytes held (indexes, blocks and a small per-block overhead). */
  maxBytes: number;
}

interface MemoryLayer {
  layer: StoredLayer;
  data: Buffer[];
}

// Book-keeping counted against maxBytes so that many tiny layers still hit the bound.
const LAYER_OVERHEAD = 256;
const BLOCK_OVERHEAD = 32;

function layerBytes(entry: MemoryLayer): number {
  return (
    LAYER_OVERHEAD +
    entry.layer.index.length +
    totalLength(entry.layer.blocks) +
    BLOCK_OVERHEAD * entry.data.length
  );
}

/**
 * An in-memory LayerStore for tests and ephemeral cfsd instances: whole layers are evicted,
 * least recently read first, to stay within maxBytes. Failures are kept (they are small).
 */
export class MemoryStore implements LayerStore {
  readonly maxBytes: number;
  readonly #layers: LRUCache<Digest, MemoryLayer>;
  readonly #failures = new Map<Digest, LayerFailure>();

  constructor(options: MemoryStoreOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new GcfsError(ErrorCode.InvalidArgument, `memory store max_bytes must be a positive integer`, {
        details: { maxBytes: options.maxBytes },
      });
    }
    this.maxBytes = options.maxBytes;
    this.#layers = new LRUCache({ maxSize: options.maxBytes, sizeCalculation: layerBytes });
  }

  /** Bytes currently held, as counted against maxBytes. */
  get size(): number {
    return this.#layers.calculatedSize;
  }

  async get(digest: Digest): Promise<StoredLayer | undefined> {
    if (this.#failures.has(digest)) return undefined;
    return this.#layers.get(digest)?.layer;
  }

  async readBlocks(digest: Digest, first: number, count: number): Promise<Buffer[]> {
    const entry = this.#failures.has(digest) ? undefined : this.#layers.get(digest);
    if (entry === undefined) throw layerNotFound(digest);
    const [start, end] = clampRange(first, count, entry.data.length);
    return entry.data.slice(start, end);
  }

  async failure(digest: Digest): Promise<LayerFailure | undefined> {
    return this.#failures.get(digest);
  }

  async markFailed(digest: Digest, reason: string): Promise<void> {
    this.#failures.set(digest, { reason, at: Date.now() });
    this.#layers.delete(digest);
  }

  async clearFailure(digest: Digest): Promise<void> {
    this.#failures.delete(digest);
  }

  async begin(digest: Digest, options: BeginOptions = {}): Promise<LayerWriter> {
    return new MemoryWriter(digest, (entry) => this.#publish(entry, options.replace ?? false));
  }

  async delete(digest: Digest): Promise<void> {
    this.#layers.delete(digest);
  }

  async list(): Promise<Digest[]> {
    return [...this.#layers.keys()].filter((digest) => !this.#failures.has(digest));
  }

  async close(): Promise<void> {
    this.#layers.clear();
    this.#failures.clear();
  }

  // Readers take a layer's entry in one step, so swapping the entry is atomic for them.
  #publish(entry: MemoryLayer, replace: boolean): void {
    const { digest } = entry.layer;
    // Without replace the first commit wins; a replace never brings back a layer since dropped.
    if (this.#layers.has(digest) !== replace) return;
    const bytes = layerBytes(entry);
    if (bytes > this.maxBytes) {
      throw new GcfsError(
        ErrorCode.InvalidArgument,
        `layer ${digest} needs ${bytes} bytes, more than the memory store's max_bytes ${this.maxBytes}`,
        { hint: 'raise max_bytes or use a file:// store' },
      );
    }
    this.#layers.set(digest, entry);
  }
}

class MemoryWriter extends OrderedWriter {
  readonly #publish: (entry: MemoryLayer) => void;
  #data: Buffer[] = [];

  constructor(digest: Digest, publish: (entry: MemoryLayer) => void) {
    super(digest);
    this.#publish = publish;
  }

  protected async writeBlock(data: Buffer): Promise<void> {
    // A copy: the caller may reuse its buffer once the append resolved.
    this.#data.push(Buffer.from(data));
  }

  protected async publish(index: Buffer): Promise<void> {
    const blocks = recordsFromLengths(this.#data.map((block) => block.length));
    const layer = { digest: this.digest, index: Buffer.from(index), blocks, createdAt: Date.now() };
    this.#publish({ layer, data: this.#data });
  }

  protected async discard(): Promise<void> {
    this.#data = [];
  }
}
