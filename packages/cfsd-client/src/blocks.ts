// Blocks as cfsd sends them (each compressed on its own, with its size and CRC-32) become
// verified plain bytes here. A block that fails a check is an error, never returned.

import { promisify } from 'node:util';
import { crc32, zstdDecompress } from 'node:zlib';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { containerfs } from '@gcfs/proto';

const unzstd = promisify(zstdDecompress);

/** One block of a layer's content stream, uncompressed and verified. */
export interface DecodedBlock {
  index: number;
  data: Buffer;
}

function blockError(code: ErrorCode, layer: string, block: containerfs.Block, what: string, cause?: unknown) {
  return new GcfsError(code, `block ${block.index} of layer ${layer} from cfsd ${what}`, {
    cause,
    details: { layer, block: block.index, encoding: block.encoding },
  });
}

async function decompress(layer: string, block: containerfs.Block): Promise<Buffer> {
  switch (block.encoding) {
    case containerfs.BlockEncoding.BLOCK_ENCODING_RAW:
      return block.data;
    case containerfs.BlockEncoding.BLOCK_ENCODING_ZSTD:
      try {
        // Bounded by the announced size: a hostile or broken frame cannot balloon in memory.
        return await unzstd(block.data, { maxOutputLength: Math.max(1, block.uncompressedSize) });
      } catch (err) {
        throw blockError(ErrorCode.CorruptBlock, layer, block, 'does not decompress to its size', err);
      }
    default:
      throw blockError(ErrorCode.BackendError, layer, block, `has unknown encoding ${block.encoding}`);
  }
}

/** Decode one block and check its uncompressed size and CRC-32. */
export async function decodeBlock(layer: string, block: containerfs.Block): Promise<DecodedBlock> {
  const data = await decompress(layer, block);
  if (data.length !== block.uncompressedSize) {
    throw blockError(
      ErrorCode.CorruptBlock,
      layer,
      block,
      `has ${data.length} bytes, announced ${block.uncompressedSize}`,
    );
  }
  const actual = crc32(data);
  if (actual !== block.crc32) {
    throw blockError(ErrorCode.CorruptBlock, layer, block, `fails its CRC-32 (${actual} != ${block.crc32})`);
  }
  return { index: block.index, data };
}

/**
 * Decode the blocks of one ReadBlocks answer, which must be consecutive from `first`
 * (cfsd may send fewer than asked for: at the layer's end, or above its own maximum).
 */
export async function decodeBlocks(
  layer: string,
  first: number,
  blocks: readonly containerfs.Block[],
): Promise<DecodedBlock[]> {
  blocks.forEach((block, i) => {
    if (block.index !== first + i) {
      throw blockError(ErrorCode.BackendError, layer, block, `arrived where block ${first + i} was expected`);
    }
  });
  return Promise.all(blocks.map((block) => decodeBlock(layer, block)));
}
