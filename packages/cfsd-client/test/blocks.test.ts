import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32, zstdCompressSync } from 'node:zlib';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { containerfs } from '@gcfs/proto';
import { decodeBlock, decodeBlocks } from '../src/blocks.js';

const LAYER = 'sha256:0123';
const { BLOCK_ENCODING_RAW: RAW, BLOCK_ENCODING_ZSTD: ZSTD } = containerfs.BlockEncoding;

function block(index: number, content: Buffer, encoding = ZSTD): containerfs.Block {
  const data = encoding === ZSTD ? zstdCompressSync(content) : content;
  return { index, encoding, data, uncompressedSize: content.length, crc32: crc32(content) };
}

test('decodes zstd and raw blocks to their content', async () => {
  const content = Buffer.concat([Buffer.alloc(40_000, 'a'), randomBytes(1000)]);
  assert.deepEqual((await decodeBlock(LAYER, block(7, content))).data, content);
  assert.deepEqual(await decodeBlock(LAYER, block(8, content, RAW)), { index: 8, data: content });
  assert.equal((await decodeBlock(LAYER, block(0, Buffer.alloc(0), RAW))).data.length, 0);
});

test('refuses blocks that fail their checksum or size, or do not decompress', async () => {
  const content = randomBytes(4096);
  const corrupt = (b: containerfs.Block) => decodeBlock(LAYER, b);
  const isCorrupt = (err: unknown) => isGcfsError(err, ErrorCode.CorruptBlock);

  await assert.rejects(corrupt({ ...block(1, content), crc32: crc32(content) ^ 1 }), isCorrupt);
  const flipped = Buffer.from(content);
  flipped[100]! ^= 0xff;
  await assert.rejects(corrupt({ ...block(1, content, RAW), data: flipped }), isCorrupt);
  await assert.rejects(corrupt({ ...block(1, content), uncompressedSize: content.length - 1 }), isCorrupt);
  await assert.rejects(
    corrupt({ ...block(1, content, RAW), uncompressedSize: content.length + 1 }),
    isCorrupt,
  );
  await assert.rejects(corrupt({ ...block(1, content), data: Buffer.from('not zstd at all') }), isCorrupt);
  await assert.rejects(corrupt({ ...block(1, content), encoding: 9 as containerfs.BlockEncoding }), (err) =>
    isGcfsError(err, ErrorCode.BackendError),
  );
});

test('an answer must hold consecutive blocks from the first one asked for', async () => {
  const blocks = [block(4, randomBytes(10)), block(5, randomBytes(10))];
  assert.deepEqual(
    (await decodeBlocks(LAYER, 4, blocks)).map((b) => b.index),
    [4, 5],
  );
  await assert.rejects(decodeBlocks(LAYER, 3, blocks), (err) => isGcfsError(err, ErrorCode.BackendError));
  await assert.rejects(decodeBlocks(LAYER, 4, [blocks[1]!, blocks[0]!]), (err) =>
    isGcfsError(err, ErrorCode.BackendError),
  );
});
