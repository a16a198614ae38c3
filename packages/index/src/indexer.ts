import { PassThrough, pipeline, type Readable } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { ErrorCode, GcfsError, isGcfsError, type LayerCompression, layerCompression } from '@gcfs/core';
import { type BlockMeta, type BlockOptions, type BlockSink, BlockWriter } from './blocks.js';
import type { ChunkSource } from './byte-source.js';
import { TarReader, type TarReaderOptions } from './tar-reader.js';
import { TocBuilder, type TocEntry } from './toc.js';

/** Everything cfsd stores about one layer besides its blocks. */
export interface LayerIndex {
  /** Sorted by name, the root (`''`) first. */
  entries: TocEntry[];
  blockSize: number;
  blocks: BlockMeta[];
  /** Bytes of the content stream: all regular files' contents in tar order. */
  contentSize: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Members in the tar (PAX and GNU extension headers not counted). */
  entryCount: number;
  /** Every block is raw because compression was deferred (rawBlocks); compaction clears it. */
  compressionPending?: boolean;
}

export interface IndexOptions extends BlockOptions, TarReaderOptions {}

/**
 * Read an uncompressed layer tar once: the table of contents, and the content stream cut into
 * blocks (compressed unless `rawBlocks`) delivered to `sink` as they fill. Hostile or malformed input rejects with
 * ERR_BAD_LAYER / ERR_HOSTILE_TAR / ERR_UNSUPPORTED_TAR_ENTRY; a stream error (say, a
 * corrupt gzip upstream) with ERR_BAD_LAYER and the cause.
 */
export async function indexLayer(
  source: ChunkSource,
  sink: BlockSink,
  options: IndexOptions = {},
): Promise<LayerIndex> {
  const reader = new TarReader(source, options);
  const blocks = new BlockWriter(sink, options);
  const toc = new TocBuilder();
  let entryCount = 0;
  try {
    for await (const member of reader) {
      entryCount++;
      const entry = toc.add(member, blocks.position);
      if (entry?.type !== 'file') continue;
      for await (const chunk of member.body) await blocks.write(chunk);
    }
    return {
      entries: toc.finish(),
      blockSize: blocks.blockSize,
      blocks: await blocks.finish(),
      contentSize: blocks.position,
      tarSize: reader.bytesRead,
      entryCount,
      ...(options.rawBlocks ? { compressionPending: true } : {}),
    };
  } catch (err) {
    await blocks.abandon();
    if (isGcfsError(err)) throw err;
    throw new GcfsError(ErrorCode.BadLayer, 'layer could not be read', { cause: err });
  }
}

/** The compression of a layer media type; unknown types are refused. */
export function compressionOf(mediaType: string): LayerCompression {
  const compression = layerCompression(mediaType);
  if (compression === undefined) {
    throw new GcfsError(ErrorCode.UnsupportedMediaType, `${mediaType} is not a layer media type we can read`);
  }
  return compression;
}

const CHUNK_SIZE = 256 << 10;
const AHEAD = 4 << 20;

/**
 * The uncompressed tar of a layer blob stream. Errors of either stream (a corrupt gzip, a
 * failed download) reach whoever reads the result; destroying the result stops the source.
 */
export function decompressLayer(blob: Readable, compression: LayerCompression): Readable {
  // 256 KiB output chunks rather than zlib's 16 KiB: a third less time to untar a layer. Up to
  // 4 MiB decompressed ahead, so that decompression (on libuv's pool) goes on while the reader
  // waits for its consumer (block compression, disk) instead of taking turns with it.
  const options = { chunkSize: CHUNK_SIZE, readableHighWaterMark: AHEAD };
  const decompressor = {
    gzip: () => createGunzip(options),
    zstd: () => createZstdDecompress(options),
    none: () => new PassThrough(),
  }[compression]();
  return pipeline(blob, decompressor, () => {});
}
