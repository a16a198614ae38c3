import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  type Descriptor,
  type Digest,
  describeError,
  ErrorCode,
  isGcfsError,
  SingleFlight,
} from '@gcfs/core';
import {
  compressionOf,
  decompressLayer,
  indexLayer,
  indexLayerThreaded,
  serializeLayerIndex,
} from '@gcfs/index';
import pLimit from 'p-limit';
import type { LayerStore } from './store/layer-store.js';

export type LayerOutcome = { status: 'ready' } | { status: 'failed'; reason: string; permanent: boolean };

export interface LayerIndexerEvents {
  indexed: [
    { digest: Digest; seconds: number; compressedBytes: number; contentBytes: number; blocks: number },
  ];
  failed: [{ digest: Digest; reason: string; permanent: boolean }];
}

export interface LayerIndexerOptions {
  /** Layers indexed at once across all images. */
  concurrency: number;
  blockSize?: number;
  /**
   * Layers of at least this many compressed bytes are indexed on a worker thread (default
   * 1 MiB): the event loop stays free and the work's garbage stays in the worker's heap. Smaller
   * ones are indexed here, where a thread would cost more than it saves.
   */
  workerThreshold?: number;
}

interface Indexed {
  contentSize: number;
  blockCount: number;
}

const DEFAULT_WORKER_THRESHOLD = 1 << 20;

// Failures that retrying cannot fix: the layer itself is bad or unsupported.
const PERMANENT = new Set<string>([
  ErrorCode.DigestMismatch,
  ErrorCode.SizeMismatch,
  ErrorCode.UnsupportedMediaType,
  ErrorCode.BadLayer,
  ErrorCode.HostileTar,
  ErrorCode.UnsupportedTarEntry,
]);

function isPermanent(err: unknown): boolean {
  if (isGcfsError(err)) return PERMANENT.has(err.code);
  // zlib reports corrupt gzip/zstd data with these codes.
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(Z_DATA_ERROR|Z_BUF_ERROR|ZSTD_)/.test(code);
}

/**
 * Indexes each layer digest once, however many images and callers ask at the same time,
 * at most `concurrency` at a time, its blocks stored raw (compacted later). A layer is written to the store invisibly and committed
 * only when the blob's digest verified and the whole tar was read; bad layers are
 * recorded as failed (never served half-indexed), transient failures are not recorded.
 */
export class LayerIndexer extends EventEmitter<LayerIndexerEvents> {
  private readonly inFlight = new SingleFlight<Digest, LayerOutcome>();
  private readonly limit: ReturnType<typeof pLimit>;

  constructor(
    private readonly store: LayerStore,
    private readonly options: LayerIndexerOptions,
  ) {
    super();
    this.limit = pLimit(options.concurrency);
  }

  /** Current state without starting work. */
  async peek(digest: Digest): Promise<LayerOutcome | { status: 'indexing' } | undefined> {
    // The store first: a layer stored already is ready even while a redundant ensure() runs.
    if (await this.store.get(digest)) return { status: 'ready' };
    const failure = await this.store.failure(digest);
    if (failure) return { status: 'failed', reason: failure.reason, permanent: true };
    return this.inFlight.has(digest) ? { status: 'indexing' } : undefined;
  }

  /** The indexing under way for `digest`, if any (it settles with the layer's outcome). */
  inProgress(digest: Digest): Promise<LayerOutcome> | undefined {
    return this.inFlight.get(digest);
  }

  /** Index the layer unless it is stored or failed already; `open` streams the compressed blob. */
  ensure(desc: Descriptor, open: () => Readable): Promise<LayerOutcome> {
    return this.inFlight.run(desc.digest, () => this.run(desc, open));
  }

  private async run(desc: Descriptor, open: () => Readable): Promise<LayerOutcome> {
    if (await this.store.get(desc.digest)) return { status: 'ready' };
    const failure = await this.store.failure(desc.digest);
    if (failure) return { status: 'failed', reason: failure.reason, permanent: true };
    return this.limit(async () => {
      const started = process.hrtime.bigint();
      try {
        const index = await this.indexInto(desc, open);
        this.emit('indexed', {
          digest: desc.digest,
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          compressedBytes: desc.size,
          contentBytes: index.contentSize,
          blocks: index.blockCount,
        });
        return { status: 'ready' } as const;
      } catch (err) {
        const permanent = isPermanent(err);
        const reason = describeError(err);
        if (permanent) await this.store.markFailed(desc.digest, reason);
        this.emit('failed', { digest: desc.digest, reason, permanent });
        return { status: 'failed', reason, permanent } as const;
      }
    });
  }

  private async indexInto(desc: Descriptor, open: () => Readable): Promise<Indexed> {
    const compression = compressionOf(desc.mediaType);
    const writer = await this.store.begin(desc.digest);
    try {
      const blob = open();
      // Blocks stay raw: compression is half of indexing's CPU and a first pull waits for the
      // index. ReadBlocks compresses on the way out until the LayerCompactor has stored them.
      const options = {
        rawBlocks: true,
        ...(this.options.blockSize === undefined ? {} : { blockSize: this.options.blockSize }),
      };
      if (desc.size >= (this.options.workerThreshold ?? DEFAULT_WORKER_THRESHOLD)) {
        // Committed only after the blob's end verified and the worker read the whole tar.
        const index = await indexLayerThreaded(
          blob,
          compression,
          (stored) => writer.appendBlock(stored),
          options,
        );
        await writer.commit(index.serialized);
        return index;
      }
      const tar = decompressLayer(blob, compression);
      const index = await indexLayer(
        tar,
        { writeBlock: (_i, compressed) => writer.appendBlock(compressed) },
        options,
      );
      // Read what follows the tar's end (padding, the gzip trailer and its CRC): the registry
      // client verifies the blob's digest only when the blob ends. Nothing becomes visible
      // before that verdict.
      tar.resume();
      await Promise.all([finished(tar), finished(blob)]);
      await writer.commit(serializeLayerIndex(index));
      return { contentSize: index.contentSize, blockCount: index.blocks.length };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }
}
