import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { decodeBlock } from '@gcfs/index';
import { containerfs as pb } from '@gcfs/proto';
import { BlockReader } from '../src/block-reader.js';
import { LayerCompactor } from '../src/layer-compactor.js';
import { LayerIndexes } from '../src/layer-indexes.js';
import { ServingActivity } from '../src/serving-activity.js';
import { MemoryStore } from '../src/store/index.js';
import { BLOCK, mixedBlocks, storedIndex, storeRawLayer } from './raw-layers.js';

const noIndexCache = { forget() {} };

test('ReadBlocks across a compaction: encodings, sizes and bytes always agree with the index', async () => {
  const store = new MemoryStore({ maxBytes: 64 << 20 });
  const blocks = mixedBlocks(5);
  const digest = await storeRawLayer(store, blocks);
  const indexes = new LayerIndexes(store);
  const reader = new BlockReader(indexes, store, 64);
  const decode = (block: pb.Block) =>
    decodeBlock(block.index, Buffer.from(block.data), {
      encoding: block.encoding === pb.BlockEncoding.BLOCK_ENCODING_ZSTD ? 'zstd' : 'raw',
      compressedSize: block.data.length,
      uncompressedSize: block.uncompressedSize,
      crc32: block.crc32,
    });
  const expected = blocks.map((_, i) =>
    i % 2 === 0 ? pb.BlockEncoding.BLOCK_ENCODING_ZSTD : pb.BlockEncoding.BLOCK_ENCODING_RAW,
  );

  // Raw in the store, compressed on the way out where that pays.
  const before = await reader.read(digest, 0, 10);
  assert.deepEqual(
    before.map((b) => b.encoding),
    expected,
  );
  for (const block of before) assert.deepEqual(await decode(block), blocks[block.index]);

  // Compacted behind the parsed index's back (it is cached, and not told): the reader sees
  // the stored sizes disagree, parses the index again and answers from the new copy.
  const compactor = new LayerCompactor(store, noIndexCache, new ServingActivity(0));
  compactor.enqueue(digest);
  compactor.start({ scan: false });
  await once(compactor, 'compacted');
  await compactor.stop();
  const after = await reader.read(digest, 0, 10);
  assert.deepEqual(
    after.map((b) => b.encoding),
    expected,
  );
  for (const block of after) assert.deepEqual(await decode(block), blocks[block.index]);
  assert.deepEqual(
    after.map((b) => b.data.length),
    (await storedIndex(store, digest)).blocks.map((b) => b.compressedSize),
  );
});

test('while a layer is raw, an answer carries as many blocks as fit once compressed', async () => {
  const store = new MemoryStore({ maxBytes: 64 << 20 });
  const text = Buffer.from('the same line of text, again and again\n'.repeat(BLOCK / 32)).subarray(0, BLOCK);
  const compressible = await storeRawLayer(
    store,
    Array.from({ length: 80 }, () => text),
  );
  const incompressible = await storeRawLayer(
    store,
    Array.from({ length: 80 }, () => randomBytes(BLOCK)),
  );
  const reader = new BlockReader(new LayerIndexes(store), store, 64);
  // 64 blocks are 4 MiB raw, a few KiB compressed: all go, as they would once compacted.
  const packed = await reader.read(compressible, 0, 100);
  assert.equal(packed.length, 64);
  assert.ok(packed.every((b) => b.encoding === pb.BlockEncoding.BLOCK_ENCODING_ZSTD));
  // Incompressible blocks stay raw, and an answer stays within 3 MiB.
  const raw = await reader.read(incompressible, 10, 100);
  assert.equal(raw.length, (3 << 20) / BLOCK);
  assert.equal(raw[0]!.index, 10);
  assert.ok(raw.every((b) => b.encoding === pb.BlockEncoding.BLOCK_ENCODING_RAW));
});
