import { promisify } from 'node:util';
import { constants, crc32, zstdCompress, zstdDecompress, zstdDecompressSync } from 'node:zlib';
import { ErrorCode, GcfsError } from '@gcfs/core';

export const DEFAULT_BLOCK_SIZE = 256 * 1024;
export const DEFAULT_ZSTD_LEVEL = 1;
export const DEFAULT_CONCURRENCY = 4;

export type BlockEncoding = 'zstd' | 'raw';

/** What the index records of each block of the content stream. */
export interface BlockMeta {
  encoding: BlockEncoding;
  /** Bytes stored (equal to uncompressedSize for raw blocks). */
  compressedSize: number;
  uncompressedSize: number;
  /** crc32 (node:zlib) of the uncompressed bytes. */
  crc32: number;
}

/**
 * Where blocks go as they fill: a store, a network stream, memory in tests. The writer reuses
 * a block's buffer once writeBlock resolved: a sink that keeps the bytes copies them.
 */
export interface BlockSink {
  writeBlock(
    index: number,
    compressed: Buffer,
    meta: { encoding: BlockEncoding; uncompressedSize: number; crc32: number },
  ): Promise<void>;
}

export interface BlockOptions {
  /** Bytes of content per block (the last one is shorter); default 256 KiB. */
  blockSize?: number;
  /** zstd level, 1-19; default 1 (a third less CPU than 3 for 9% bigger blocks; see docs/benchmarks). */
  zstdLevel?: number;
  /** Blocks compressing at once; default 4 (libuv's thread pool size). */
  concurrency?: number;
  /**
   * Store every block raw: half the CPU of indexing goes to zstd, and a first pull waits for
   * the index. The layer's index then says its compression is pending (compacted later).
   */
  rawBlocks?: boolean;
}

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

/** A block as stored: zstd when that is smaller, otherwise the bytes themselves. */
export interface EncodedBlock {
  encoding: BlockEncoding;
  stored: Buffer;
}

/** Compress one block on zlib's thread pool; incompressible blocks (already compressed files) stay raw. */
export async function encodeBlock(data: Buffer, level = DEFAULT_ZSTD_LEVEL): Promise<EncodedBlock> {
  const packed = await compress(data, {
    // Most blocks compress to under half: one trip to the thread pool per block, not one
    // per 16 KiB, without allocating a whole block's worth of output for each.
    chunkSize: Math.max(16 << 10, data.length >> 1),
    params: { [constants.ZSTD_c_compressionLevel]: level },
  });
  return packed.length < data.length
    ? { encoding: 'zstd', stored: packed }
    : { encoding: 'raw', stored: data };
}

export function checkBlockSize(blockSize: number): number {
  if (!Number.isSafeInteger(blockSize) || blockSize < 4096 || blockSize > 64 << 20) {
    throw new GcfsError(ErrorCode.InvalidArgument, `block size ${blockSize} is not between 4 KiB and 64 MiB`);
  }
  return blockSize;
}

/**
 * Cuts the content stream into fixed-size blocks and hands each, compressed on its own,
 * to the sink in order as soon as it is ready. Up to `concurrency` blocks compress at once
 * on zlib's thread pool while reading goes on; beyond that write() waits, so memory stays
 * at a few blocks whatever the layer's size and a slow sink slows the reader down.
 */
export class BlockWriter {
  readonly blockSize: number;
  readonly blocks: BlockMeta[] = [];
  readonly #sink: BlockSink;
  readonly #level: number;
  readonly #concurrency: number;
  readonly #raw: boolean;
  /** Delivery of each block in flight, oldest first; each waits for the one before. */
  readonly #inFlight: Promise<void>[] = [];
  #tail: Promise<void> = Promise.resolve();
  #buffer: Buffer;
  /** Block buffers whose content the sink has taken: free to fill again. */
  readonly #spare: Buffer[] = [];
  #filled = 0;
  /** Bytes of content written so far: the content offset of what comes next. */
  position = 0;

  constructor(sink: BlockSink, options: BlockOptions = {}) {
    this.blockSize = checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE);
    this.#level = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
    this.#concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.#raw = options.rawBlocks ?? false;
    this.#sink = sink;
    this.#buffer = Buffer.allocUnsafe(this.blockSize);
  }

  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, this.blockSize - this.#filled);
      chunk.copy(this.#buffer, this.#filled, at, at + n);
      this.#filled += n;
      this.position += n;
      at += n;
      if (this.#filled === this.blockSize) await this.#flush();
    }
  }

  /** Emit the last, short block and wait until the sink has every block. */
  async finish(): Promise<BlockMeta[]> {
    if (this.#filled > 0) await this.#flush();
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
    return this.blocks;
  }

  /** After a failure: let blocks in flight settle so nothing reaches the sink later. */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.#inFlight.splice(0));
  }

  async #flush(): Promise<void> {
    const full = this.#buffer;
    const data = full.subarray(0, this.#filled);
    this.#buffer = this.#spare.pop() ?? Buffer.allocUnsafe(this.blockSize);
    this.#filled = 0;
    const index = this.blocks.length;
    const meta: BlockMeta = {
      encoding: 'raw',
      compressedSize: 0,
      uncompressedSize: data.length,
      crc32: crc32(data),
    };
    this.blocks.push(meta);
    const encoded: Promise<EncodedBlock> = this.#raw
      ? Promise.resolve({ encoding: 'raw', stored: data })
      : encodeBlock(data, this.#level);
    const delivered = Promise.all([encoded, this.#tail]).then(async ([{ encoding, stored }]) => {
      meta.encoding = encoding;
      meta.compressedSize = stored.length;
      await this.#sink.writeBlock(index, stored, {
        encoding: meta.encoding,
        uncompressedSize: meta.uncompressedSize,
        crc32: meta.crc32,
      });
      // Fewer fresh 256 KiB buffers, fewer garbage collections: the sink is done with this one.
      if (this.#spare.length < this.#concurrency) this.#spare.push(full);
    });
    // Handled here so that a failure seen first by finish() or abandon() is not "unhandled".
    delivered.catch(() => {});
    this.#tail = delivered;
    this.#inFlight.push(delivered);
    if (this.#inFlight.length >= this.#concurrency) await this.#inFlight.shift();
  }
}

/** A piece of a block: `length` bytes from `offset` within block `index`. */
export interface BlockSpan {
  index: number;
  offset: number;
  length: number;
}

/**
 * The blocks holding `length` bytes of the content stream from `offset` (for a file read:
 * contentOffset + offset in the file), in order.
 */
export function blockSpans(blockSize: number, offset: number, length: number): BlockSpan[] {
  const spans: BlockSpan[] = [];
  for (let at = offset, end = offset + length; at < end; ) {
    const index = Math.floor(at / blockSize);
    const inBlock = at - index * blockSize;
    const n = Math.min(end - at, blockSize - inBlock);
    spans.push({ index, offset: inBlock, length: n });
    at += n;
  }
  return spans;
}

function corrupt(index: number, problem: string, cause?: unknown): GcfsError {
  return new GcfsError(ErrorCode.CorruptBlock, `content block ${index}: ${problem}`, {
    cause,
    details: { block: index },
  });
}

function verified(index: number, data: Buffer, meta: BlockMeta): Buffer {
  if (data.length !== meta.uncompressedSize) {
    throw corrupt(index, `${data.length} bytes where the index says ${meta.uncompressedSize}`);
  }
  if (crc32(data) !== meta.crc32) throw corrupt(index, 'crc32 mismatch');
  return data;
}

function checkStored(index: number, stored: Buffer, meta: BlockMeta): void {
  if (stored.length !== meta.compressedSize) {
    throw corrupt(index, `${stored.length} stored bytes where the index says ${meta.compressedSize}`);
  }
}

/** Decompress and verify one block against its index entry (async: zlib's thread pool). */
export async function decodeBlock(index: number, stored: Buffer, meta: BlockMeta): Promise<Buffer> {
  checkStored(index, stored, meta);
  if (meta.encoding === 'raw') return verified(index, stored, meta);
  let data: Buffer;
  try {
    // The bound stops a forged block from inflating without limit.
    data = await decompress(stored, { maxOutputLength: Math.max(1, meta.uncompressedSize) });
  } catch (err) {
    throw corrupt(index, 'does not decompress', err);
  }
  return verified(index, data, meta);
}

/** decodeBlock on the calling thread, for callers that must not wait on the thread pool. */
export function decodeBlockSync(index: number, stored: Buffer, meta: BlockMeta): Buffer {
  checkStored(index, stored, meta);
  if (meta.encoding === 'raw') return verified(index, stored, meta);
  let data: Buffer;
  try {
    data = zstdDecompressSync(stored, { maxOutputLength: Math.max(1, meta.uncompressedSize) });
  } catch (err) {
    throw corrupt(index, 'does not decompress', err);
  }
  return verified(index, data, meta);
}
