import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';
import { type BlockMeta, encodeBlock } from '@gcfs/index';
import { containerfs as pb } from '@gcfs/proto';
import type { LayerIndexes } from './layer-indexes.js';
import type { LayerStore } from './store/layer-store.js';

/** Stay under the 4 MiB gRPC clients accept by default: fewer blocks, never none. */
const MAX_RESPONSE_BYTES = 3 * 1024 * 1024;
/** Raw bytes read per answer while a layer is raw, as a multiple of what the answer carries. */
const RAW_READ_FACTOR = 4;

/** Blocks compressed at once while a layer is raw: libuv's thread pool holds 4. */
const COMPRESS_WAVE = 4;

/**
 * ReadBlocks' blocks: as stored, each with the encoding, size and crc32 its index records.
 * While a layer's compression is pending (indexed raw, not compacted yet), each block goes
 * out zstd-compressed when that makes it smaller: the wire carries what compaction will
 * store, and the node's network and cache do not pay for the deferral.
 */
export class BlockReader {
  readonly #indexes: LayerIndexes;
  readonly #store: LayerStore;
  readonly #maxBlocks: number;

  constructor(indexes: LayerIndexes, store: LayerStore, maxBlocksPerRead: number) {
    this.#indexes = indexes;
    this.#store = store;
    this.#maxBlocks = maxBlocksPerRead;
  }

  async read(digest: Digest, first: number, count: number): Promise<pb.Block[]> {
    // The index is parsed and cached, the blocks read after: a compaction that replaced the
    // layer in between shows as blocks whose stored size is not the one the index says.
    for (let attempt = 0; ; attempt++) {
      const { index } = await this.#indexes.get(digest);
      const pending = index.compressionPending === true;
      // Raw blocks shrink on the way out: read more of them, then keep what fits the answer.
      const metas = this.#range(
        index.blocks,
        first,
        count,
        pending ? RAW_READ_FACTOR * MAX_RESPONSE_BYTES : MAX_RESPONSE_BYTES,
      );
      const data = metas.length > 0 ? await this.#store.readBlocks(digest, first, metas.length) : [];
      if (
        data.length === metas.length &&
        data.every((bytes, i) => bytes.length === metas[i]!.compressedSize)
      ) {
        return this.#answer(first, data, metas, pending);
      }
      if (attempt > 0) {
        throw new GcfsError(ErrorCode.StoreCorrupt, `blocks of layer ${digest} do not match its index`, {
          details: { digest, first },
        });
      }
      this.#indexes.forget(digest);
    }
  }

  /**
   * The leading blocks that fit one answer (at least one), encoded a wave at a time in order, so
   * that raw blocks past the answer's end are not compressed only to be dropped.
   */
  async #answer(first: number, data: Buffer[], metas: BlockMeta[], pending: boolean): Promise<pb.Block[]> {
    const blocks: pb.Block[] = [];
    let bytes = 0;
    for (let start = 0; start < data.length; start += COMPRESS_WAVE) {
      const wave = await Promise.all(
        data
          .slice(start, start + COMPRESS_WAVE)
          .map((stored, i) => this.#block(first + start + i, stored, metas[start + i]!, pending)),
      );
      for (const block of wave) {
        bytes += block.data.length;
        if (blocks.length > 0 && bytes > MAX_RESPONSE_BYTES) return blocks;
        blocks.push(block);
      }
    }
    return blocks;
  }

  /** The metas of the blocks to read for one answer: up to `budget` stored bytes, never none. */
  #range(blocks: readonly BlockMeta[], first: number, count: number, budget: number): BlockMeta[] {
    const metas: BlockMeta[] = [];
    let bytes = 0;
    for (let i = first; i < blocks.length && metas.length < Math.min(count, this.#maxBlocks); i++) {
      bytes += blocks[i]!.compressedSize;
      if (metas.length > 0 && bytes > budget) break;
      metas.push(blocks[i]!);
    }
    return metas;
  }

  async #block(index: number, stored: Buffer, meta: BlockMeta, pending: boolean): Promise<pb.Block> {
    const { encoding, stored: data } = pending
      ? await encodeBlock(stored)
      : { encoding: meta.encoding, stored };
    return {
      index,
      encoding:
        encoding === 'zstd' ? pb.BlockEncoding.BLOCK_ENCODING_ZSTD : pb.BlockEncoding.BLOCK_ENCODING_RAW,
      data,
      uncompressedSize: meta.uncompressedSize,
      crc32: meta.crc32,
    };
  }
}
