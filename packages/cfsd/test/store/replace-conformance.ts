import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { LayerStore } from '../../src/store/index.js';
import { openFresh, type StoreFactory } from './conformance.js';
import { assertBlocks, assertLayer, randomLayer, type TestLayer, writeLayer } from './fixtures.js';

async function replaceLayer(store: LayerStore, layer: TestLayer): Promise<void> {
  const writer = await store.begin(layer.digest, { replace: true });
  for (const block of layer.blocks) await writer.appendBlock(block);
  await writer.commit(layer.index);
}

/** Which copy `blocks` (a whole read of the layer) are: all of one, never a mix. */
function copyOf(blocks: Buffer[], copies: TestLayer[], what: string): number {
  const which = copies.findIndex(
    (copy) => copy.blocks.length === blocks.length && copy.blocks.every((b, i) => b.equals(blocks[i]!)),
  );
  assert.ok(which >= 0, `${what}: the blocks are not those of one copy`);
  return which;
}

/** What every store does when a layer is replaced (begin with replace: a recompressed copy). */
export function replaceConformance(name: string, factory: StoreFactory): void {
  const openStore = (t: TestContext) => openFresh(factory, t);

  describe(`LayerStore replace: ${name}`, () => {
    test('a replace swaps the new copy in at commit; an aborted one leaves the old', async (t) => {
      const store = await openStore(t);
      const old = randomLayer(6);
      const fresh = { ...randomLayer(4), digest: old.digest };
      await writeLayer(store, old);
      const writer = await store.begin(old.digest, { replace: true });
      for (const block of fresh.blocks) await writer.appendBlock(block);
      await assertLayer(store, old);
      await writer.commit(fresh.index);
      await assertLayer(store, fresh);
      assert.deepEqual(await store.list(), [old.digest]);

      const doomed = await store.begin(old.digest, { replace: true });
      await doomed.appendBlock(old.blocks[0]!);
      await doomed.abort();
      await assertLayer(store, fresh);

      // A replace never brings back a layer deleted or failed while it was written.
      const absent = randomLayer(3);
      await replaceLayer(store, absent);
      assert.equal(await store.get(absent.digest), undefined);
      const deleted = await store.begin(old.digest, { replace: true });
      for (const block of old.blocks) await deleted.appendBlock(block);
      await store.delete(old.digest);
      await deleted.commit(old.index);
      assert.equal(await store.get(old.digest), undefined);
      await writeLayer(store, old);
      const failed = await store.begin(old.digest, { replace: true });
      await store.markFailed(old.digest, 'bad layer');
      await failed.commit(fresh.index);
      assert.equal(await store.get(old.digest), undefined);
      assert.deepEqual(await store.list(), []);
    });

    test('reads during replaces see one whole copy, never absence; later reads the new one', async (t) => {
      const store = await openStore(t);
      const count = 12;
      const base = randomLayer(count, 20_000);
      const copies = [
        base,
        ...Array.from({ length: 4 }, () => ({ ...randomLayer(count, 20_000), digest: base.digest })),
      ];
      await writeLayer(store, base);
      let replacing = true;
      const seen = new Set<number>();
      const reader = async () => {
        while (replacing) {
          const stored = await store.get(base.digest);
          assert.ok(stored, 'the layer is never absent during a replace');
          const blocks = await store.readBlocks(base.digest, 0, count);
          seen.add(copyOf(blocks, copies, 'a whole read'));
          const first = randomInt(0, count);
          const some = await store.readBlocks(base.digest, first, randomInt(1, count));
          assert.ok(
            copies.some((c) =>
              c.blocks.slice(first, first + some.length).every((b, i) => b.equals(some[i]!)),
            ),
          );
          // Reads served from memory never wait for I/O: let the replacing go on.
          await nextTurn();
        }
      };
      const readers = Array.from({ length: 6 }, reader);
      for (const [k, copy] of copies.slice(1).entries()) {
        await replaceLayer(store, copy);
        // Every read that starts after the commit sees the new copy.
        assert.equal(
          copyOf(await store.readBlocks(base.digest, 0, count), copies, `after replace ${k}`),
          k + 1,
        );
        await assertLayer(store, copy);
        await nextTurn();
      }
      replacing = false;
      await Promise.all(readers);
      assert.ok(seen.size >= 2, 'readers saw more than one copy');
      assertBlocks(await store.readBlocks(base.digest, 0, count), copies.at(-1)!.blocks);
    });
  });
}
