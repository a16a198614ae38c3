import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { digestOf } from '@gcfs/core';
import { decodeBlock } from '@gcfs/index';
import { LayerCompactor } from '../src/layer-compactor.js';
import { ServingActivity } from '../src/serving-activity.js';
import { CachedStore, type LayerStore, MemoryStore } from '../src/store/index.js';
import { mixedBlocks, storedIndex, storeRawLayer } from './raw-layers.js';

const noIndexCache = { forget() {} };

/** A store that reports each readBlocks before answering it. */
function watchedStore(inner: LayerStore, onRead: (first: number) => void): LayerStore {
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'readBlocks') {
        return (digest: never, first: number, count: number) => {
          onRead(first);
          return target.readBlocks(digest, first, count);
        };
      }
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

test('compaction stores zstd blocks where they are smaller, the same bytes, and clears the flag', async () => {
  const store = new MemoryStore({ maxBytes: 64 << 20 });
  const blocks = mixedBlocks(7);
  const digest = await storeRawLayer(store, blocks);
  const before = await storedIndex(store, digest);
  const compactor = new LayerCompactor(store, noIndexCache, new ServingActivity(0), { batchBlocks: 3 });
  const compacted = once(compactor, 'compacted');
  compactor.enqueue(digest);
  compactor.start({ scan: false });
  const [event] = await compacted;
  await compactor.stop();

  const after = await storedIndex(store, digest);
  assert.equal(after.compressionPending, undefined);
  assert.deepEqual(
    after.blocks.map((b) => b.encoding),
    blocks.map((_, i) => (i % 2 === 0 ? 'zstd' : 'raw')),
  );
  assert.deepEqual(
    after.blocks.map((b) => [b.crc32, b.uncompressedSize]),
    before.blocks.map((b) => [b.crc32, b.uncompressedSize]),
  );
  assert.deepEqual(after.entries, before.entries);
  const stored = await store.readBlocks(digest, 0, blocks.length);
  for (const [i, block] of blocks.entries())
    assert.deepEqual(await decodeBlock(i, stored[i]!, after.blocks[i]!), block);
  const total = (bs: { compressedSize: number }[]) => bs.reduce((sum, b) => sum + b.compressedSize, 0);
  assert.deepEqual([event.bytesBefore, event.bytesAfter], [total(before.blocks), total(after.blocks)]);
  assert.ok(event.bytesAfter < event.bytesBefore);
  assert.equal(compactor.pending, 0);
});

test('the quiet period: compaction waits while calls keep coming, starts after the last one', async () => {
  const store = new MemoryStore({ maxBytes: 64 << 20 });
  const digest = await storeRawLayer(store, mixedBlocks(4));
  const activity = new ServingActivity(30);
  const events: string[] = [];
  const compactor = new LayerCompactor(
    watchedStore(store, (first) => events.push(`read ${first}`)),
    noIndexCache,
    activity,
    { batchBlocks: 1 },
  );
  compactor.on('compacted', () => events.push('compacted'));
  // Calls overlap, so one is always under way, for many quiet periods.
  let call = activity.enter();
  compactor.enqueue(digest);
  compactor.start({ scan: false });
  for (let i = 0; i < 10; i++) {
    await delay(15);
    const next = activity.enter();
    call();
    call = next;
  }
  events.push('calls ended');
  call();
  await once(compactor, 'compacted');
  assert.deepEqual(events, ['calls ended', 'read 0', 'read 1', 'read 2', 'read 3', 'compacted']);

  // A call arriving mid-layer pauses it before its next step.
  const second = await storeRawLayer(store, mixedBlocks(3));
  events.length = 0;
  let during: (() => void) | undefined;
  const paused = new LayerCompactor(
    watchedStore(store, (first) => {
      events.push(`read ${first}`);
      if (first === 0) during = activity.enter();
    }),
    noIndexCache,
    activity,
    { batchBlocks: 1 },
  );
  paused.on('compacted', () => events.push('compacted'));
  paused.enqueue(second);
  paused.start({ scan: false });
  while (during === undefined) await delay(5);
  await delay(100);
  events.push('call ended');
  during();
  await once(paused, 'compacted');
  assert.deepEqual(events, ['read 0', 'call ended', 'read 1', 'read 2', 'compacted']);
  await Promise.all([compactor.stop(), paused.stop()]);
});

test('stopped mid-layer, the compactor leaves the raw copy whole; a new one finds it by scanning', async () => {
  const store = new MemoryStore({ maxBytes: 64 << 20 });
  const blocks = mixedBlocks(6);
  const digest = await storeRawLayer(store, blocks);
  const compacted = await storeRawLayer(store, mixedBlocks(2));
  const rawCopy = await store.get(digest);
  let stopping: Promise<void> | undefined;
  const compactor: LayerCompactor = new LayerCompactor(
    watchedStore(store, (first) => {
      if (first === 2) stopping = compactor.stop();
    }),
    noIndexCache,
    new ServingActivity(0),
    { batchBlocks: 2 },
  );
  const events: string[] = [];
  compactor.on('compacted', () => events.push('compacted'));
  compactor.on('failed', () => events.push('failed'));
  compactor.enqueue(digest);
  compactor.start({ scan: false });
  while (stopping === undefined) await delay(5);
  await stopping;
  assert.deepEqual(events, []);
  assert.equal(await store.get(digest), rawCopy);
  assert.equal((await storedIndex(store, digest)).compressionPending, true);

  // After a restart: every stored layer still raw is found and compacted; a damaged index
  // is reported and does not stop the others.
  const damaged = digestOf('a layer whose index is damaged');
  await (await store.begin(damaged)).commit(Buffer.from('not an index'));
  const again = new LayerCompactor(store, noIndexCache, new ServingActivity(0));
  const done = new Set<string>();
  const failed: unknown[] = [];
  again.on('compacted', ({ digest }) => done.add(digest));
  again.on('failed', ({ digest, reason }) =>
    failed.push([digest, /ERR_CORRUPT_INDEX|layer index/.test(reason)]),
  );
  again.start({ scan: true });
  while (done.size < 2) await once(again, 'compacted');
  await again.stop();
  assert.deepEqual([...done].sort(), [digest, compacted].sort());
  assert.deepEqual(failed, [[damaged, true]]);
  for (const d of [digest, compacted])
    assert.equal((await storedIndex(store, d)).compressionPending, undefined);
});

test('compaction reads below the block cache and leaves it to the containers', async () => {
  const inner = new MemoryStore({ maxBytes: 64 << 20 });
  const cached = new CachedStore(inner, { maxBytes: 64 << 20 });
  const blocks = mixedBlocks(6);
  const digest = await storeRawLayer(cached, blocks);
  const hot = await cached.readBlocks(digest, 0, 2);
  const compactor = new LayerCompactor(cached, noIndexCache, new ServingActivity(0), { source: inner });
  compactor.enqueue(digest);
  compactor.start({ scan: false });
  await once(compactor, 'compacted');
  await compactor.stop();
  assert.deepEqual([cached.stats().misses, cached.stats().blocks], [2, 2]);
  // The replace made the cached blocks stale: they are never served with the new index.
  const after = await storedIndex(cached, digest);
  const read = await cached.readBlocks(digest, 0, 2);
  assert.notDeepEqual(read, hot);
  for (const i of [0, 1]) assert.deepEqual(await decodeBlock(i, read[i]!, after.blocks[i]!), blocks[i]);
});
