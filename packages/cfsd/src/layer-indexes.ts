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

  constructor(
    private readonly store: LayerStore,
    maxLayers = 256,
  ) {
    this.cache = new LRUCache({ max: maxLayers });
  }

  async get(digest: Digest): Promise<ParsedLayer> {
    const cached = this.cache.get(digest);
    if (cached) return cached;
    const stored = await this.store.get(digest);
    if (!stored) {
      throw new GcfsError(ErrorCode.NotFound, `layer ${digest} is not indexed`, {
        hint: 'call AuthImage and wait until the layer is ready',
      });
    }
    const index = deserializeLayerIndex(stored.index);
    const parsed = { index, toc: new Toc(index.entries) };
    this.cache.set(digest, parsed);
    return parsed;
  }

  forget(digest: Digest): void {
    this.cache.delete(digest);
  }
}
