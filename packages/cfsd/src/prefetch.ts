import type { Digest } from '@gcfs/core';
import { blockSpans } from '@gcfs/index';
import type { ParsedLayer } from './layer-indexes.js';

export interface ReportedRead {
  layerDigest: Digest;
  path: string;
  offset: number;
  length: number;
  atMs: number;
}

export interface PrefetchRange {
  layerDigest: Digest;
  firstBlock: number;
  count: number;
}

export interface PrefetchReport {
  manifestDigest: Digest;
  ranges: PrefetchRange[];
  reports: number;
}

interface ImageReads {
  /** `layer#block` → earliest time any container read it. */
  firstRead: Map<string, { layerDigest: Digest; block: number; atMs: number }>;
  reports: number;
}

/**
 * Builds each image's prefetch report from what nodes saw containers read while starting:
 * the union of blocks read, ordered by when they were first needed, merged into runs.
 */
export class PrefetchReports {
  private readonly images = new Map<Digest, ImageReads>();

  record(manifestDigest: Digest, reads: ReportedRead[], layerOf: (layer: Digest) => ParsedLayer): number {
    let image = this.images.get(manifestDigest);
    if (!image) {
      image = { firstRead: new Map(), reports: 0 };
      this.images.set(manifestDigest, image);
    }
    let accepted = 0;
    for (const read of reads) {
      const { index, toc } = layerOf(read.layerDigest);
      const found = toc.get(read.path);
      const entry = found && toc.resolveHardlink(found);
      if (entry?.type !== 'file' || read.offset < 0) continue;
      const end = Math.min(read.offset + read.length, entry.size);
      if (end <= read.offset) continue;
      for (const { index: block } of blockSpans(
        index.blockSize,
        entry.contentOffset + read.offset,
        end - read.offset,
      )) {
        const key = `${read.layerDigest}#${block}`;
        const seen = image.firstRead.get(key);
        if (!seen || read.atMs < seen.atMs) {
          image.firstRead.set(key, { layerDigest: read.layerDigest, block, atMs: read.atMs });
        }
      }
      accepted++;
    }
    if (accepted > 0) image.reports++;
    return accepted;
  }

  get(manifestDigest: Digest): PrefetchReport | undefined {
    const image = this.images.get(manifestDigest);
    if (!image || image.reports === 0) return undefined;
    const ordered = [...image.firstRead.values()].sort(
      (a, b) => a.atMs - b.atMs || a.layerDigest.localeCompare(b.layerDigest) || a.block - b.block,
    );
    const ranges: PrefetchRange[] = [];
    for (const { layerDigest, block } of ordered) {
      const last = ranges.at(-1);
      if (last && last.layerDigest === layerDigest && last.firstBlock + last.count === block) last.count++;
      else ranges.push({ layerDigest, firstBlock: block, count: 1 });
    }
    return { manifestDigest, ranges, reports: image.reports };
  }
}
