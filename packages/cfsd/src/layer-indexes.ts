import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';
import { deserializeLayerIndex, type LayerIndex, Toc } from '@gcfs/index';
import { LRUCache } from 'lru-cache';
import type { LayerStore } from './store/layer-store.js';

/** A layer's index with path lookups over its table of contents. */
export interface ParsedLayer {
  index: LayerIndex;
  toc: Toc;
}

/**
 * Parsed layer indexes, shared by every call that needs a layer's TOC or block table.
 * Parsing a big layer's index costs milliseconds, so it is done once per layer while hot.
 */
export class LayerIndexes {
  private readonly cache: LRUCache<Digest, ParsedLayer>;
  /** Bumped by forget: a parse begun before a replace is not cached after it. */
  private readonly generations = new Map<Digest, number>();

  constructor(
    private readonly store: LayerStore,
    maxLayers = 256,
  ) {
    this.cache = new LRUCache({ max: maxLayers });
  }

  async get(digest: Digest): Promise<ParsedLayer> {
    const cached = this.cache.get(digest);
    if (cached) return cached;
    const generation = this.generations.get(digest);
    const stored = await this.store.get(digest);
    if (!stored) {
      throw new GcfsError(ErrorCode.NotFound, `layer ${digest} is not indexed`, {
        hint: 'call AuthImage and wait until the layer is ready',
      });
    }
    const index = deserializeLayerIndex(stored.index);
    const parsed = { index, toc: new Toc(index.entries) };
    if (this.generations.get(digest) === generation) this.cache.set(digest, parsed);
    return parsed;
  }

  /** Drop a layer's parsed index: the stored layer was replaced (compacted) or removed. */
  forget(digest: Digest): void {
    this.cache.delete(digest);
    this.generations.set(digest, (this.generations.get(digest) ?? 0) + 1);
  }
}
