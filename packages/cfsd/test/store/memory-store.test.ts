import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { MemoryStore } from '../../src/store/index.js';
import { assertLayer, randomLayer, writeLayer } from './fixtures.js';

test('the memory store stays within max_bytes by evicting the least recently read layers', async () => {
  const store = new MemoryStore({ maxBytes: 100_000 });
  const layers = Array.from({ length: 4 }, () => ({ ...randomLayer(10, 0), blocks: [] as Buffer[] }));
  for (const layer of layers) layer.blocks = Array.from({ length: 10 }, () => Buffer.alloc(2900, 1));
  for (const layer of layers.slice(0, 3)) await writeLayer(store, layer);
  assert.equal((await store.list()).length, 3);
  await store.readBlocks(layers[0]!.digest, 0, 1); // now the most recent: layers[1] goes first
  await writeLayer(store, layers[3]!);
  assert.ok(store.size <= 100_000);
  assert.equal(await store.get(layers[1]!.digest), undefined);
  for (const i of [0, 2, 3]) await assertLayer(store, layers[i]!);
});

test('a layer larger than max_bytes is refused at commit, and bad bounds at construction', async () => {
  const store = new MemoryStore({ maxBytes: 10_000 });
  const layer = randomLayer(0);
  layer.blocks = [Buffer.alloc(20_000)];
  await assert.rejects(writeLayer(store, layer), (err) => isGcfsError(err, ErrorCode.InvalidArgument));
  assert.equal(await store.get(layer.digest), undefined);
  for (const maxBytes of [0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => new MemoryStore({ maxBytes }),
      (err) => isGcfsError(err, ErrorCode.InvalidArgument),
    );
  }
});

test('the stored bytes are a copy: reusing an appended buffer does not change the layer', async () => {
  const store = new MemoryStore({ maxBytes: 1 << 20 });
  const layer = randomLayer(3, 100);
  const writer = await store.begin(layer.digest);
  const scratch = Buffer.alloc(100);
  for (const block of layer.blocks) {
    block.copy(scratch);
    await writer.appendBlock(scratch.subarray(0, block.length));
  }
  scratch.fill(0);
  await writer.commit(layer.index);
  await assertLayer(store, layer);
});
