import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, digestHex, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '@gcfs/core';
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

interface StoredReads {
  reports: number;
  blocks: Array<{ layerDigest: Digest; block: number; atMs: number }>;
}

/**
 * Builds each image's prefetch report from what nodes saw containers read while starting:
 * the union of blocks read, ordered by when they were first needed, merged into runs.
 * With a directory, each image's reads are kept there too (one JSON file per manifest,
 * replaced atomically), so reports outlive a restart of cfsd, as its indexes do.
 */
export class PrefetchReports {
  private readonly images = new Map<Digest, ImageReads>();
  private readonly dir: string | undefined;
  /** Writes of one image's file, one after the other. */
  private readonly writes = new Map<Digest, Promise<void>>();

  constructor(dir?: string) {
    this.dir = dir;
  }

  /**
   * Merge one node's report. Reads are taken earliest first and each block is visited once
   * per report, however many reads cover it: a report of many overlapping reads of a large
   * file costs what its blocks cost, not reads × blocks.
   */
  async record(
    manifestDigest: Digest,
    reads: ReportedRead[],
    layerOf: (layer: Digest) => ParsedLayer,
  ): Promise<number> {
    const image = (await this.load(manifestDigest)) ?? { firstRead: new Map(), reports: 0 };
    this.images.set(manifestDigest, image);
    const visited = new Map<Digest, BlockRuns>();
    let accepted = 0;
    for (const read of [...reads].sort((a, b) => a.atMs - b.atMs)) {
      const { index, toc } = layerOf(read.layerDigest);
      const found = toc.get(read.path);
      const entry = found && toc.resolveHardlink(found);
      if (entry?.type !== 'file' || read.offset < 0) continue;
      const end = Math.min(read.offset + read.length, entry.size);
      if (end <= read.offset) continue;
      const runs = visited.get(read.layerDigest) ?? new BlockRuns();
      visited.set(read.layerDigest, runs);
      const first = Math.floor((entry.contentOffset + read.offset) / index.blockSize);
      const last = Math.floor((entry.contentOffset + end - 1) / index.blockSize);
      for (const block of runs.visit(first, last)) {
        const key = `${read.layerDigest}#${block}`;
        const seen = image.firstRead.get(key);
        if (!seen || read.atMs < seen.atMs) {
          image.firstRead.set(key, { layerDigest: read.layerDigest, block, atMs: read.atMs });
        }
      }
      accepted++;
    }
    if (accepted > 0) {
      image.reports++;
      await this.persist(manifestDigest, image);
    }
    return accepted;
  }

  async get(manifestDigest: Digest): Promise<PrefetchReport | undefined> {
    const image = await this.load(manifestDigest);
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

  private file(manifestDigest: Digest): string | undefined {
    return this.dir === undefined ? undefined : join(this.dir, `${digestHex(manifestDigest)}.json`);
  }

  private async load(manifestDigest: Digest): Promise<ImageReads | undefined> {
    const known = this.images.get(manifestDigest);
    const file = this.file(manifestDigest);
    if (known !== undefined || file === undefined) return known;
    let stored: StoredReads;
    try {
      stored = JSON.parse(await readFile(file, 'utf8')) as StoredReads;
    } catch {
      return undefined; // none yet (or unreadable: it is rebuilt from the next reports)
    }
    const image: ImageReads = { firstRead: new Map(), reports: stored.reports };
    for (const read of stored.blocks) image.firstRead.set(`${read.layerDigest}#${read.block}`, read);
    this.images.set(manifestDigest, image);
    return image;
  }

  private persist(manifestDigest: Digest, image: ImageReads): Promise<void> {
    const file = this.file(manifestDigest);
    if (file === undefined) return Promise.resolve();
    const write = async () => {
      const stored: StoredReads = { reports: image.reports, blocks: [...image.firstRead.values()] };
      // Which files an image reads first: as private as the store it sits in.
      await mkdir(this.dir!, { recursive: true, mode: PRIVATE_DIR_MODE });
      await writeFile(`${file}.tmp`, JSON.stringify(stored), { mode: PRIVATE_FILE_MODE });
      await rename(`${file}.tmp`, file);
    };
    const next = (this.writes.get(manifestDigest) ?? Promise.resolve()).then(write, write);
    this.writes.set(manifestDigest, next);
    return next;
  }
}

/** Blocks of one layer visited so far: each block is yielded once, skipped runs in near O(1). */
class BlockRuns {
  /** block → a later block that may not be visited yet (path-compressed, as union-find). */
  readonly #next = new Map<number, number>();

  *visit(first: number, last: number): Generator<number> {
    for (let block = this.#unvisited(first); block <= last; block = this.#unvisited(block + 1)) {
      this.#next.set(block, block + 1);
      yield block;
    }
  }

  #unvisited(block: number): number {
    let found = block;
    while (this.#next.has(found)) found = this.#next.get(found)!;
    for (let at = block; at !== found; ) {
      const next = this.#next.get(at)!;
      this.#next.set(at, found);
      at = next;
    }
    return found;
  }
}
