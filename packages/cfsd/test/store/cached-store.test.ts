import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDirFor } from '@gcfs/testkit';
import { CachedStore, FileStore, MemoryStore } from '../../src/store/index.js';
import { assertBlocks, randomLayer, writeLayer } from './fixtures.js';

test('hits and misses are counted per block; a miss run is read once and then served from the cache', async () => {
  const store = new CachedStore(new MemoryStore({ maxBytes: 1 << 20 }), { maxBytes: 1 << 20 });
  const layer = randomLayer(12, 1000);
  await writeLayer(store, layer);
  assertBlocks(await store.readBlocks(layer.digest, 0, 10), layer.blocks.slice(0, 10));
  assert.deepEqual(
    { hits: store.stats().hits, misses: store.stats().misses, blocks: store.stats().blocks },
    { hits: 0, misses: 10, blocks: 10 },
  );
  assertBlocks(await store.readBlocks(layer.digest, 5, 100), layer.blocks.slice(5));
  assert.deepEqual([store.stats().hits, store.stats().misses], [5, 12]);
  assertBlocks(await store.readBlocks(layer.digest, 0, 12), layer.blocks);
  assert.deepEqual([store.stats().hits, store.stats().misses], [17, 12]);
  const bytes = layer.blocks.reduce((sum, b) => sum + Math.max(1, b.length), 0);
  assert.equal(store.stats().bytes, bytes);
});

test('the cache stays within its byte bound and counts evictions', async () => {
  const store = new CachedStore(new MemoryStore({ maxBytes: 1 << 20 }), { maxBytes: 10_000 });
  const layer = randomLayer(0);
  layer.blocks = Array.from({ length: 30 }, () => Buffer.alloc(1000, 3));
  await writeLayer(store, layer);
  assertBlocks(await store.readBlocks(layer.digest, 0, 30), layer.blocks);
  const stats = store.stats();
  assert.ok(stats.bytes <= 10_000);
  assert.equal(stats.evictions, 20);
  assert.equal(stats.blocks, 10);
});

test('blocks cached before a delete or markFailed are never served afterwards', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cached-store-');
  const store = new CachedStore(await FileStore.open(dir.path), { maxBytes: 1 << 20 });
  t.after(() => store.close());
  const old = randomLayer(4, 500);
  await writeLayer(store, old);
  await store.readBlocks(old.digest, 0, 4);
  await store.delete(old.digest);
  const replaced = { ...randomLayer(4, 500), digest: old.digest };
  await writeLayer(store, replaced);
  assertBlocks(await store.readBlocks(old.digest, 0, 4), replaced.blocks);
  await store.markFailed(old.digest, 'bad');
  await assert.rejects(store.readBlocks(old.digest, 0, 4), /not in the store/);
});
