import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { test } from 'node:test';
import { crc32, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { tempDirFor } from '@gcfs/testkit';
import {
  decodeBlock,
  deserializeLayerIndex,
  encodeBlock,
  indexLayerThreaded,
  type LayerIndex,
  serializeLayerIndex,
} from '../src/index.js';
import { BLOCK_SIZE, ENTRIES } from './fixtures.js';
import { buildLayerBlob, indexFile, readContent } from './helpers.js';

test('rawBlocks: the same content in raw blocks, the index says compression is pending', async (t) => {
  const dir = await tempDirFor(t);
  const blob = await buildLayerBlob(dir.path, ENTRIES, 'gzip');
  const compressed = await indexFile(blob, 'gzip', { blockSize: BLOCK_SIZE });
  const raw = await indexFile(blob, 'gzip', { blockSize: BLOCK_SIZE, rawBlocks: true });
  assert.equal(raw.index.compressionPending, true);
  assert.equal(compressed.index.compressionPending, undefined);
  assert.ok(raw.index.blocks.every((b) => b.encoding === 'raw' && b.compressedSize === b.uncompressedSize));
  assert.ok(compressed.index.blocks.some((b) => b.encoding === 'zstd'));
  assert.deepEqual(
    raw.index.blocks.map((b) => b.crc32),
    compressed.index.blocks.map((b) => b.crc32),
  );
  const size = raw.index.contentSize;
  assert.deepEqual(
    await readContent(raw.index, raw.sink, 0, size),
    await readContent(compressed.index, compressed.sink, 0, size),
  );
  assert.deepEqual(deserializeLayerIndex(serializeLayerIndex(raw.index)), raw.index);

  // On a worker thread too: the option crosses to it.
  const blocks: Buffer[] = [];
  const threaded = await indexLayerThreaded(
    createReadStream(blob),
    'gzip',
    async (stored) => void blocks.push(Buffer.from(stored)),
    { blockSize: BLOCK_SIZE, rawBlocks: true },
  );
  assert.deepEqual(threaded.serialized, serializeLayerIndex(raw.index));
  assert.deepEqual(blocks, raw.sink.blocks);
});

test('the pending flag is validated strictly; indexes without it read as compressed', async (t) => {
  const dir = await tempDirFor(t);
  const blob = await buildLayerBlob(dir.path, ENTRIES, 'none');
  const { index } = await indexFile(blob, 'none', { blockSize: BLOCK_SIZE, rawBlocks: true });
  const { compressionPending: _, ...older } = index;
  assert.equal(deserializeLayerIndex(serializeLayerIndex(older)).compressionPending, undefined);

  const mixed: LayerIndex = { ...index, blocks: index.blocks.map((b) => ({ ...b })) };
  const packed = await encodeBlock(Buffer.alloc(index.blocks[0]!.uncompressedSize));
  mixed.blocks[0] = { ...mixed.blocks[0]!, encoding: 'zstd', compressedSize: packed.stored.length };
  assert.throws(() => deserializeLayerIndex(serializeLayerIndex(mixed)), {
    code: 'ERR_CORRUPT_INDEX',
    message: /pending yet some blocks are compressed/,
  });
  // Values the serializer never writes (false, a string) are damage, not "compressed".
  for (const value of [false, 'yes', 1]) {
    assert.throws(() => deserializeLayerIndex(rewritePayload(serializeLayerIndex(index), value)), {
      code: 'ERR_CORRUPT_INDEX',
      message: /compressionPending/,
    });
  }
});

/** The serialised index with its compressionPending replaced, checksum made valid again. */
function rewritePayload(bytes: Buffer, compressionPending: unknown): Buffer {
  const json = JSON.parse(zstdDecompressSync(bytes.subarray(40)).toString('utf8'));
  const payload = zstdCompressSync(Buffer.from(JSON.stringify({ ...json, compressionPending })));
  return Buffer.concat([bytes.subarray(0, 8), createHash('sha256').update(payload).digest(), payload]);
}

test('encodeBlock keeps incompressible blocks raw and compressible ones zstd', async () => {
  const zeros = Buffer.alloc(64 << 10);
  const noise = randomBytes(64 << 10);
  const packed = await encodeBlock(zeros);
  assert.equal(packed.encoding, 'zstd');
  assert.ok(packed.stored.length < 1000);
  const meta = {
    encoding: packed.encoding,
    compressedSize: packed.stored.length,
    uncompressedSize: zeros.length,
    crc32: crc32(zeros),
  };
  assert.deepEqual(await decodeBlock(0, packed.stored, meta), zeros);
  const kept = await encodeBlock(noise);
  assert.equal(kept.encoding, 'raw');
  assert.equal(kept.stored, noise);
});
