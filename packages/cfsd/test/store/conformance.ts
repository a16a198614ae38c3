import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import type { LayerStore } from '../../src/store/index.js';
import {
  assertBlocks,
  assertLayer,
  randomDigest,
  randomLayer,
  type TestLayer,
  writeLayer,
} from './fixtures.js';

/** A place a store lives in, which can be opened (again, if persistent) during one test. */
export interface StoreHarness {
  open(): Promise<LayerStore>;
}

/** Make a fresh harness; register its cleanup with `t.after`. */
export type StoreFactory = (t: TestContext) => Promise<StoreHarness>;

const notFound = (err: unknown) => isGcfsError(err, ErrorCode.NotFound);
const invalidArgument = (err: unknown) => isGcfsError(err, ErrorCode.InvalidArgument);

/** A store from a fresh harness, closed when the test ends. */
export async function openFresh(factory: StoreFactory, t: TestContext): Promise<LayerStore> {
  const store = await (await factory(t)).open();
  t.after(() => store.close());
  return store;
}

/**
 * The suite every store passes. `persistent`: a store opened again sees what a closed one
 * wrote (the reopen test exists only for those, rather than being skipped for the others).
 */
export function storeConformance(
  name: string,
  factory: StoreFactory,
  { persistent }: { persistent: boolean },
): void {
  const openStore = (t: TestContext) => openFresh(factory, t);

  describe(`LayerStore conformance: ${name}`, () => {
    test('layers with random block counts and sizes read back whole and in random ranges', async (t) => {
      const store = await openStore(t);
      const layers = Array.from({ length: 6 }, () => randomLayer());
      for (const layer of layers) await writeLayer(store, layer);
      for (const layer of layers) {
        await assertLayer(store, layer);
        const n = layer.blocks.length;
        for (let k = 0; k < 20; k++) {
          const first = randomInt(0, n + 3);
          const count = randomInt(0, n + 3);
          const read = await store.readBlocks(layer.digest, first, count);
          assertBlocks(read, layer.blocks.slice(first, first + count), `[${first}, +${count}) of ${n}`);
        }
        assert.deepEqual(await store.readBlocks(layer.digest, n, 5), []);
        assert.deepEqual(await store.readBlocks(layer.digest, n + 100, 1), []);
        assert.deepEqual(await store.readBlocks(layer.digest, 0, 0), []);
      }
    });

    test('an empty layer, empty blocks and large blocks', async (t) => {
      const store = await openStore(t);
      const empty: TestLayer = { digest: randomDigest(), index: Buffer.alloc(0), blocks: [] };
      const hollow: TestLayer = { digest: randomDigest(), index: randomBytes(10), blocks: [Buffer.alloc(0)] };
      const large: TestLayer = {
        digest: randomDigest(),
        index: randomBytes(300_000),
        blocks: [randomBytes(4 << 20), randomBytes(1), randomBytes((4 << 20) + 7), randomBytes(3 << 20)],
      };
      for (const layer of [empty, hollow, large]) await writeLayer(store, layer);
      for (const layer of [empty, hollow, large]) await assertLayer(store, layer);
      assertBlocks(await store.readBlocks(large.digest, 1, 2), large.blocks.slice(1, 3));
      assert.deepEqual(await store.readBlocks(empty.digest, 0, 10), []);
    });

    test('invalid ranges are refused; absent layers are NotFound', async (t) => {
      const store = await openStore(t);
      const layer = randomLayer(5);
      await writeLayer(store, layer);
      for (const [first, count] of [
        [-1, 1],
        [0, -1],
        [0.5, 1],
        [0, 1.5],
        [Number.NaN, 1],
      ] as const) {
        await assert.rejects(
          store.readBlocks(layer.digest, first, count),
          invalidArgument,
          `${first}, ${count}`,
        );
      }
      const absent = randomDigest();
      assert.equal(await store.get(absent), undefined);
      await assert.rejects(store.readBlocks(absent, 0, 1), notFound);
      await assert.rejects(store.readBlocks(absent, 0, 0), notFound);
      assert.equal(await store.failure(absent), undefined);
    });

    test('a layer is invisible until commit, and abort leaves nothing', async (t) => {
      const store = await openStore(t);
      const layer = randomLayer(8);
      const writer = await store.begin(layer.digest);
      for (const block of layer.blocks) await writer.appendBlock(block);
      assert.equal(await store.get(layer.digest), undefined);
      await assert.rejects(store.readBlocks(layer.digest, 0, 1), notFound);
      assert.ok(!(await store.list()).includes(layer.digest));
      await writer.commit(layer.index);
      await assertLayer(store, layer);
      await assert.rejects(writer.commit(layer.index), invalidArgument, 'a second commit');
      await assert.rejects(writer.appendBlock(randomBytes(1)), invalidArgument, 'append after commit');
      await writer.abort(); // after a commit: nothing to undo
      await assertLayer(store, layer);

      const aborted = randomLayer(5);
      const doomed = await store.begin(aborted.digest);
      for (const block of aborted.blocks) await doomed.appendBlock(block);
      await doomed.abort();
      await doomed.abort();
      await assert.rejects(doomed.appendBlock(randomBytes(1)), invalidArgument);
      await assert.rejects(doomed.commit(aborted.index), invalidArgument);
      assert.equal(await store.get(aborted.digest), undefined);
      assert.deepEqual(await store.list(), [layer.digest]);
      await writeLayer(store, aborted);
      await assertLayer(store, aborted);
    });

    test('appends not awaited one by one still land in call order', async (t) => {
      const store = await openStore(t);
      const layer = randomLayer(30);
      const writer = await store.begin(layer.digest);
      const appends = layer.blocks.map((block) => writer.appendBlock(block));
      await writer.commit(layer.index);
      await Promise.all(appends);
      await assertLayer(store, layer);
    });

    test('markFailed hides and drops a layer until clearFailure; a new write then succeeds', async (t) => {
      const store = await openStore(t);
      const layer = randomLayer(6);
      await writeLayer(store, layer);
      const before = Date.now();
      await store.markFailed(layer.digest, 'corrupt gzip stream');
      const failure = await store.failure(layer.digest);
      assert.equal(failure?.reason, 'corrupt gzip stream');
      assert.ok(failure.at >= before - 1000 && failure.at <= Date.now() + 1000);
      assert.equal(await store.get(layer.digest), undefined);
      await assert.rejects(store.readBlocks(layer.digest, 0, 1), notFound);
      assert.deepEqual(await store.list(), []);

      // Committed while failed: stored, yet still hidden until the failure is cleared.
      await writeLayer(store, layer);
      assert.equal(await store.get(layer.digest), undefined);
      await store.clearFailure(layer.digest);
      assert.equal(await store.failure(layer.digest), undefined);
      await assertLayer(store, layer);

      await store.markFailed(layer.digest, 'again');
      await store.clearFailure(layer.digest);
      assert.equal(await store.get(layer.digest), undefined, 'markFailed dropped the stored copy');
      await writeLayer(store, layer);
      await assertLayer(store, layer);

      const never = randomDigest();
      await store.markFailed(never, 'hostile path ../etc');
      assert.equal((await store.failure(never))?.reason, 'hostile path ../etc');
      await store.clearFailure(never);
      await store.clearFailure(never);
    });

    test('delete removes a layer, absent or not; list names exactly the stored layers', async (t) => {
      const store = await openStore(t);
      const layers = Array.from({ length: 5 }, () => randomLayer(3));
      for (const layer of layers) await writeLayer(store, layer);
      assert.deepEqual((await store.list()).sort(), layers.map((l) => l.digest).sort());
      const [gone, ...kept] = layers as [TestLayer, ...TestLayer[]];
      await store.readBlocks(gone.digest, 0, 3); // loaded (and cached, where a store caches)
      await store.delete(gone.digest);
      await store.delete(gone.digest);
      await store.delete(randomDigest());
      assert.equal(await store.get(gone.digest), undefined);
      await assert.rejects(store.readBlocks(gone.digest, 0, 1), notFound);
      assert.deepEqual((await store.list()).sort(), kept.map((l) => l.digest).sort());
      for (const layer of kept) await assertLayer(store, layer);
      // The same digest written again after a delete serves the new bytes, never stale ones.
      const rewritten = { ...randomLayer(4), digest: gone.digest };
      await writeLayer(store, rewritten);
      await assertLayer(store, rewritten);
    });

    test('concurrent writers and readers of different layers', async (t) => {
      const store = await openStore(t);
      const layers = Array.from({ length: 8 }, () => randomLayer(randomInt(1, 30), 20_000));
      const writers = await Promise.all(layers.map((layer) => store.begin(layer.digest)));
      const longest = Math.max(...layers.map((layer) => layer.blocks.length));
      for (let i = 0; i < longest; i++) {
        await Promise.all(
          layers.map((layer, j) =>
            i < layer.blocks.length ? writers[j]!.appendBlock(layer.blocks[i]!) : null,
          ),
        );
      }
      await Promise.all(layers.map((layer, j) => writers[j]!.commit(layer.index)));
      const reads = Array.from({ length: 200 }, async () => {
        const layer = layers[randomInt(0, layers.length)]!;
        const first = randomInt(0, layer.blocks.length);
        const count = randomInt(1, 5);
        assertBlocks(
          await store.readBlocks(layer.digest, first, count),
          layer.blocks.slice(first, first + count),
        );
      });
      await Promise.all([...reads, ...layers.map((layer) => assertLayer(store, layer))]);
    });

    test('the same layer written twice: both commits succeed and the first one is kept', async (t) => {
      const store = await openStore(t);
      const layer = randomLayer(10);
      const [a, b] = await Promise.all([store.begin(layer.digest), store.begin(layer.digest)]);
      await Promise.all(
        layer.blocks.map(async (block) => Promise.all([a.appendBlock(block), b.appendBlock(block)])),
      );
      await Promise.all([a.commit(layer.index), b.commit(layer.index)]);
      await assertLayer(store, layer);
      assert.deepEqual(await store.list(), [layer.digest]);

      const first = randomLayer(3);
      const second = { ...randomLayer(5), digest: first.digest };
      const w1 = await store.begin(first.digest);
      const w2 = await store.begin(first.digest);
      for (const block of second.blocks) await w2.appendBlock(block);
      for (const block of first.blocks) await w1.appendBlock(block);
      await w1.commit(first.index);
      await w2.commit(second.index);
      await assertLayer(store, first);
    });

    if (persistent)
      test('close and open again keeps layers and failures', async (t) => {
        const harness = await factory(t);
        const store = await harness.open();
        const layers = [randomLayer(4), randomLayer(0), randomLayer(12)];
        for (const layer of layers) await writeLayer(store, layer);
        const failed = randomDigest();
        await store.markFailed(failed, 'bad tar header');
        await store.close();
        const again = await harness.open();
        t.after(() => again.close());
        for (const layer of layers) await assertLayer(again, layer);
        assert.equal((await again.failure(failed))?.reason, 'bad tar header');
        assert.deepEqual((await again.list()).sort(), layers.map((l) => l.digest).sort());
      });
  });
}
