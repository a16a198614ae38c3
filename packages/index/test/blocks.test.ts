import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BlockWriter, blockSpans, decodeBlock, decodeBlockSync } from '../src/index.js';
import { MemorySink } from './helpers.js';

test('content is cut into fixed blocks, compressed when it pays, each verified on its own', async () => {
  const sink = new MemorySink();
  const writer = new BlockWriter(sink, { blockSize: 4096 });
  const content = Buffer.concat([Buffer.alloc(4096, 'a'), randomBytes(6000)]);
  for (let at = 0; at < content.length; at += 777) await writer.write(content.subarray(at, at + 777));
  const blocks = await writer.finish();
  assert.deepEqual(
    blocks.map((b) => b.uncompressedSize),
    [4096, 4096, 1904],
  );
  assert.deepEqual(sink.encodings, ['zstd', 'raw', 'raw']);
  assert.ok(blocks[0]!.compressedSize < 100);
  const decoded = await Promise.all(blocks.map((meta, i) => decodeBlock(i, sink.blocks[i]!, meta)));
  assert.deepEqual(Buffer.concat(decoded), content);
  assert.deepEqual(decodeBlockSync(0, sink.blocks[0]!, blocks[0]!), content.subarray(0, 4096));

  for (const i of [0, 1]) {
    const damaged = Buffer.from(sink.blocks[i]!);
    damaged[damaged.length >> 1]! ^= 1;
    await assert.rejects(decodeBlock(i, damaged, blocks[i]!), { code: 'ERR_CORRUPT_BLOCK' });
    assert.throws(() => decodeBlockSync(i, damaged, blocks[i]!), { code: 'ERR_CORRUPT_BLOCK' });
  }
  await assert.rejects(decodeBlock(2, sink.blocks[2]!.subarray(1), blocks[2]!), {
    code: 'ERR_CORRUPT_BLOCK',
  });
});

test('file ranges map to block spans', () => {
  assert.deepEqual(blockSpans(4096, 4000, 200), [
    { index: 0, offset: 4000, length: 96 },
    { index: 1, offset: 0, length: 104 },
  ]);
  assert.deepEqual(blockSpans(4096, 8192, 4096), [{ index: 2, offset: 0, length: 4096 }]);
  assert.deepEqual(blockSpans(4096, 10, 0), []);
  assert.throws(() => new BlockWriter(new MemorySink(), { blockSize: 100 }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});
