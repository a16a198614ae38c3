import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { indexLayerThreaded, serializeLayerIndex } from '../src/index.js';
import { END, member, tar } from './craft.js';
import { BLOCK_SIZE, ENTRIES } from './fixtures.js';
import { buildLayerBlob, indexFile } from './helpers.js';

const collect = () => {
  const blocks: Buffer[] = [];
  return { blocks, write: async (stored: Buffer) => void blocks.push(Buffer.from(stored)) };
};

test('indexing on a worker thread gives the same index and blocks as on this one', async (t) => {
  const dir = await tempDirFor(t);
  for (const compression of ['gzip', 'zstd'] as const) {
    const blob = await buildLayerBlob(dir.path, ENTRIES, compression);
    const { index, sink } = await indexFile(blob, compression, { blockSize: BLOCK_SIZE });
    const out = collect();
    const threaded = await indexLayerThreaded(createReadStream(blob), compression, out.write, {
      blockSize: BLOCK_SIZE,
    });
    assert.deepEqual(threaded.serialized, serializeLayerIndex(index));
    assert.equal(threaded.contentSize, index.contentSize);
    assert.equal(threaded.blockCount, index.blocks.length);
    assert.deepEqual(out.blocks, sink.blocks);
  }
});

test('a hostile tar is refused on the worker with the same code and message', async () => {
  const bytes = gzipSync(tar(member({ name: '../evil' }, 'x'), END));
  await assert.rejects(
    indexLayerThreaded(Readable.from([bytes]), 'gzip', async () => {}),
    (err: unknown) => isGcfsError(err, ErrorCode.HostileTar) && /"\.\.\/evil"/.test(err.message),
  );
});

test('a corrupt gzip is ERR_BAD_LAYER caused by zlib, its code kept', async () => {
  const good = gzipSync(tar(member({ name: 'f' }, randomBytes(100_000)), END));
  const bad = Buffer.from(good);
  bad.fill(0x55, 20, 200);
  await assert.rejects(
    indexLayerThreaded(Readable.from([bad]), 'gzip', async () => {}),
    (err: unknown) => {
      assert.ok(isGcfsError(err, ErrorCode.BadLayer), String(err));
      assert.match(String((err.cause as { code?: unknown })?.code), /^Z_/);
      return true;
    },
  );
  // A bad trailer (CRC) after a whole tar is refused too: the trailer is read before success.
  const badTrailer = Buffer.from(good);
  badTrailer[badTrailer.length - 6]! ^= 0xff;
  await assert.rejects(indexLayerThreaded(Readable.from([badTrailer]), 'gzip', async () => {}));
});

test("the blob's own error and the sink's error are what rejects", async () => {
  const bytes = gzipSync(tar(member({ name: 'f' }, 'x'.repeat(300_000)), END));
  const digest = new GcfsError(ErrorCode.DigestMismatch, 'digest mismatch');
  const blob = Readable.from(
    (async function* () {
      yield bytes.subarray(0, 100);
      throw digest;
    })(),
  );
  await assert.rejects(
    indexLayerThreaded(blob, 'gzip', async () => {}),
    (err) => err === digest,
  );
  const full = new Error('disk full');
  await assert.rejects(
    indexLayerThreaded(
      Readable.from([bytes]),
      'gzip',
      async () => {
        throw full;
      },
      { blockSize: 64 << 10 },
    ),
    (err) => err === full,
  );
});
