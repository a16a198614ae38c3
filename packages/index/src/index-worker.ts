// The worker side of indexLayerThreaded (threaded-indexer.ts): decompression, tar parsing,
// the table of contents and block compression, on a thread of its own with a small heap.
// Messages in: the blob's chunks and its end; out: blocks in order, then the serialised index.
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parentPort, workerData } from 'node:worker_threads';
import type { LayerCompression } from '@gcfs/core';
import { decompressLayer, type IndexOptions, indexLayer } from './indexer.js';
import { serializeLayerIndex } from './serialize.js';
import { type ToMain, type ToWorker, toWire, WINDOW_BLOCKS } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('index-worker.ts runs as a worker thread');
const { compression, options } = workerData as { compression: LayerCompression; options: IndexOptions };

const send = (message: ToMain, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

// The blob's chunks as they arrive; each taken from the queue is acknowledged, so that the
// main thread sends only a bounded window ahead.
const queue: Uint8Array[] = [];
let ended = false;
let wake: (() => void) | undefined;
// Blocks sent and not yet written by the main thread.
let unwritten = 0;
let writable: (() => void) | undefined;

port.on('message', (message: ToWorker) => {
  if (message.type === 'chunk') queue.push(message.data);
  else if (message.type === 'end') ended = true;
  else if (message.type === 'written') {
    unwritten--;
    writable?.();
    writable = undefined;
    return;
  }
  wake?.();
  wake = undefined;
});

async function* chunks(): AsyncGenerator<Uint8Array> {
  for (;;) {
    const chunk = queue.shift();
    if (chunk !== undefined) {
      send({ type: 'taken', bytes: chunk.byteLength });
      yield chunk;
    } else if (ended) return;
    else
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
  }
}

async function main(): Promise<void> {
  const tar = decompressLayer(Readable.from(chunks(), { objectMode: false }), compression);
  const index = await indexLayer(
    tar,
    {
      async writeBlock(_index, stored) {
        // An exact copy to transfer: `stored` may be a view of a buffer shared with others.
        const data = new Uint8Array(stored.length);
        data.set(stored);
        unwritten++;
        send({ type: 'block', data }, [data.buffer]);
        while (unwritten >= WINDOW_BLOCKS) {
          await new Promise<void>((resolve) => {
            writable = resolve;
          });
        }
      },
    },
    options,
  );
  // What follows the tar (padding, the gzip trailer and its CRC) is checked too.
  tar.resume();
  await finished(tar);
  const serialized = serializeLayerIndex(index);
  send({
    type: 'done',
    serialized,
    contentSize: index.contentSize,
    blockCount: index.blocks.length,
  });
}

main().then(
  () => port.close(),
  (err: unknown) => {
    send({ type: 'failed', error: toWire(err) });
    port.close();
  },
);
