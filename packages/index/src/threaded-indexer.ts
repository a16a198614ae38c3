import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import type { LayerCompression } from '@gcfs/core';
import type { IndexOptions } from './indexer.js';
import { fromWire, type ToMain, type ToWorker, WINDOW_BYTES } from './worker-protocol.js';

/** What indexLayerThreaded hands back: the index serialised, and what the caller reports. */
export interface ThreadedIndex {
  serialized: Buffer;
  contentSize: number;
  blockCount: number;
}

/**
 * indexLayer(decompressLayer(blob)) with the work on a worker thread: decompression, tar
 * parsing and block compression leave this thread (the event loop of a daemon) free, and the
 * garbage they make is collected in the worker's small heap. This thread only reads `blob`
 * (whose own checks, a digest say, run here as before) and hands each block to `writeBlock`,
 * in order, awaiting it before the worker may run more than a few blocks ahead.
 *
 * Resolves once the whole blob was read and verified (tar, trailer, `blob`'s own end); rejects
 * with the error indexLayer would have thrown, or `blob`'s or `writeBlock`'s.
 */
export async function indexLayerThreaded(
  blob: Readable,
  compression: LayerCompression,
  writeBlock: (stored: Buffer) => Promise<void>,
  options: IndexOptions = {},
): Promise<ThreadedIndex> {
  const worker = new Worker(new URL('./index-worker.js', import.meta.url), {
    workerData: { compression, options },
  });
  const post = (message: ToWorker, transfer: ArrayBuffer[] = []) => worker.postMessage(message, transfer);
  let ahead = 0;
  let drained: (() => void) | undefined;
  let failure: unknown;
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = (err) => {
      failure ??= err;
      reject(failure);
    };
  });
  failed.catch(() => {});
  let writes: Promise<void> = Promise.resolve();
  let complete = false;
  const done = new Promise<ThreadedIndex>((resolve) => {
    worker.on('message', (message: ToMain) => {
      switch (message.type) {
        case 'taken':
          ahead -= message.bytes;
          if (ahead < WINDOW_BYTES) drained?.();
          return;
        case 'block': {
          const data = Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
          writes = writes.then(() => writeBlock(data)).then(() => post({ type: 'written' }));
          writes.catch(fail);
          return;
        }
        case 'done':
          complete = true;
          // Resolved after every block is written.
          resolve(
            writes.then(() => ({
              serialized: Buffer.from(
                message.serialized.buffer,
                message.serialized.byteOffset,
                message.serialized.byteLength,
              ),
              contentSize: message.contentSize,
              blockCount: message.blockCount,
            })),
          );
          return;
        case 'failed':
          fail(fromWire(message.error));
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!complete) fail(new Error(`index worker exited with code ${code} before it finished`));
    });
  });
  const feed = async () => {
    for await (const chunk of blob as AsyncIterable<Buffer>) {
      if (failure !== undefined) return;
      // A copy to transfer: a stream's chunks may share their memory with other buffers.
      const data = new Uint8Array(chunk.length);
      data.set(chunk);
      ahead += data.byteLength;
      post({ type: 'chunk', data }, [data.buffer]);
      if (ahead >= WINDOW_BYTES) {
        const room = new Promise<void>((resolve) => {
          drained = resolve;
        });
        await Promise.race([room, failed]);
      }
    }
    post({ type: 'end' });
  };
  try {
    const [index] = await Promise.race([Promise.all([done, feed(), finished(blob)]), failed]);
    return index;
  } finally {
    blob.destroy();
    await worker.terminate();
  }
}
