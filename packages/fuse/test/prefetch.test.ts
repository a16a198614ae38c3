import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, layerDirName } from '@gcfs/core';
import type { ImageSpec } from '@gcfs/image-builder';
import type { BlockFetchEvent, CacheEvent } from '../src/index.js';
import { BLOCK_SIZE, type Fixture, fixture, mountFixture, sh } from './harness.js';

const SPEC: ImageSpec = {
  layers: [
    {
      entries: [
        { type: 'dir', path: 'app' },
        { type: 'file', path: 'app/main', content: { size: 40 * BLOCK_SIZE + 123, seed: 'prefetch' } },
      ],
    },
  ],
};

async function blockCount(fx: Fixture): Promise<number> {
  return (await fx.session.layerIndex(fx.layers[0]!)).header.blockCount;
}

function collect<T>(emitter: { on(event: string, fn: (e: T) => void): unknown }, event: string): T[] {
  const seen: T[] = [];
  emitter.on(event, (e: T) => seen.push(e));
  return seen;
}

test('prefetched blocks make a later read a cache hit with no backend fetch', async (t) => {
  const fx = await fixture(t, SPEC);
  const { mount, mnt } = await mountFixture(t, fx, {
    content: { cacheBytes: 1024 * BLOCK_SIZE, maxReadBlocks: 4 },
  });
  const layer = fx.layers[0]!;
  const blocks = await blockCount(fx);
  assert.ok(blocks > 40);
  const fetches = collect<BlockFetchEvent>(mount, 'blockFetch');

  const first = await mount.prefetch(layer, 0, blocks);
  assert.equal(first.blocks, blocks);
  assert.equal(first.fetched, blocks);
  assert.ok(first.bytes > 40 * BLOCK_SIZE);
  assert.ok(fetches.length > 0 && fetches.every((e) => e.count <= 4));
  // Cached blocks are not fetched again.
  const again = await mount.prefetch(layer, 0, blocks);
  assert.equal(again.fetched, 0);
  const fetchedBefore = fetches.length;

  const lookups = collect<CacheEvent>(mount, 'cache');
  const { stdout } = await sh(`sha256sum < '${join(mnt, 'layers', layerDirName(layer), 'app/main')}'`);
  assert.match(stdout, /^[0-9a-f]{64}/);
  assert.equal(fetches.length, fetchedBefore, 'the read fetched from the backend');
  assert.ok(lookups.length > 0);
  assert.equal(
    lookups.reduce((sum, e) => sum + e.misses, 0),
    0,
  );
  assert.ok(lookups.reduce((sum, e) => sum + e.hits, 0) >= 40);
});

test('a prefetch larger than the cache stays within its bound', async (t) => {
  const fx = await fixture(t, SPEC);
  const cacheBytes = 8 * BLOCK_SIZE;
  const { mount } = await mountFixture(t, fx, { content: { cacheBytes, maxReadBlocks: 2 } });
  let largest = 0;
  mount.on('blockFetch', () => {
    largest = Math.max(largest, mount.stats().cacheBytes);
  });
  const result = await mount.prefetch(fx.layers[0]!, 0, await blockCount(fx));
  assert.ok(result.bytes > 4 * cacheBytes);
  assert.ok(largest > 0 && largest <= cacheBytes, `the cache held ${largest} bytes`);
  assert.ok(mount.stats().cacheBytes <= cacheBytes);
});

test('unmounting stops a prefetch', async (t) => {
  const fx = await fixture(t, SPEC);
  const { mount } = await mountFixture(t, fx, { content: { maxReadBlocks: 1 } });
  const blocks = await blockCount(fx);
  let fetched = 0;
  mount.on('blockFetch', (event) => {
    fetched += event.count;
    if (fetched === 1) void mount.unmount();
  });
  await assert.rejects(mount.prefetch(fx.layers[0]!, 0, blocks), { code: ErrorCode.Aborted });
  assert.ok(fetched < blocks, `fetched ${fetched} of ${blocks} blocks`);
  await assert.rejects(mount.prefetch(fx.layers[0]!, 0, 1), { code: ErrorCode.Aborted });
});
