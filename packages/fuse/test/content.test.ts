import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { imageDirName, layerDirName, streamedLayerTarget } from '@gcfs/core';
import type { ImageSpec } from '@gcfs/image-builder';
import { gnuTarExtract, tempDirFor } from '@gcfs/testkit';
import type { BlockFetchEvent, ReadEvent } from '../src/index.js';
import { BLOCK_SIZE, type Fixture, fixture, mountFixture, sh } from './harness.js';
import { compressionOf } from './images.js';

const BIG = 1024 * 1024;
const SPEC: ImageSpec = {
  layers: [
    {
      entries: [
        { type: 'dir', path: 'a' },
        { type: 'file', path: 'a/big', content: { size: BIG, seed: 'content-a' } },
      ],
    },
    {
      compression: 'zstd',
      entries: [
        { type: 'dir', path: 'b' },
        { type: 'file', path: 'b/big', content: { size: BIG + 12_345, seed: 'content-b' } },
      ],
    },
  ],
};

/** Unpack layer `i` as the downloader would, into `<cacheDir>/sha256=<hex>`. */
async function unpack(fx: Fixture, i: number, cacheDir: string): Promise<string> {
  const layer = fx.built.layers[i]!;
  const dir = join(cacheDir, layerDirName(layer.descriptor.digest));
  await gnuTarExtract(fx.blobPath(layer.descriptor.digest), dir, { compression: compressionOf(layer) });
  return dir;
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function childSha256(path: string, timeoutMs?: number): Promise<string> {
  const { stdout } = await sh(`sha256sum '${path}'`, timeoutMs);
  return stdout.split(' ')[0]!;
}

function collect<T>(emitter: { on(event: string, fn: (e: T) => void): unknown }, event: string): T[] {
  const seen: T[] = [];
  emitter.on(event, (e: T) => seen.push(e));
  return seen;
}

test('the content cache stays within its bound while a larger file is read, in requests of maxReadBlocks', async (t) => {
  const fx = await fixture(t, SPEC);
  const cacheBytes = 16 * BLOCK_SIZE;
  const { mount, mnt } = await mountFixture(t, fx, { content: { cacheBytes, maxReadBlocks: 2 } });
  const reference = await tempDirFor(t, 'gcfs-fuse-ref-');
  const expected = await sha256Of(join(await unpack(fx, 0, reference.path), 'a/big'));
  const fetches = collect<BlockFetchEvent>(mount, 'blockFetch');
  let largest = 0;
  mount.on('read', () => {
    largest = Math.max(largest, mount.stats().cacheBytes);
  });
  const file = join(mnt, 'layers', layerDirName(fx.layers[0]!), 'a/big');
  assert.equal(await childSha256(file), expected);
  const fetched = () => fetches.reduce((sum, e) => sum + e.bytes, 0);
  assert.ok(fetched() >= BIG, `fetched ${fetched()} bytes`);
  assert.ok(largest > 0 && largest <= cacheBytes, `cache held ${largest} bytes`);
  assert.ok(mount.stats().cacheBytes <= cacheBytes);
  assert.ok(fetches.every((e) => e.count <= 2));
  // Most of the file was evicted: reading it again fetches it again.
  const before = fetched();
  assert.equal(await childSha256(file), expected);
  assert.ok(fetched() - before >= BIG - cacheBytes);
});

test('concurrent readers of one file cause one backend fetch per block', async (t) => {
  const fx = await fixture(t, SPEC);
  const { mount, mnt } = await mountFixture(t, fx, { content: { cacheBytes: 64 * BIG, maxReadBlocks: 4 } });
  const fetches = collect<BlockFetchEvent>(mount, 'blockFetch');
  const file = join(mnt, 'layers', layerDirName(fx.layers[1]!), 'b/big');
  const hashes = await Promise.all(Array.from({ length: 6 }, () => childSha256(file)));
  assert.equal(new Set(hashes).size, 1);
  const perBlock = new Map<number, number>();
  for (const e of fetches) {
    for (let i = e.first; i < e.first + e.count; i++) perBlock.set(i, (perBlock.get(i) ?? 0) + 1);
  }
  assert.ok(perBlock.size >= Math.ceil(BIG / BLOCK_SIZE));
  assert.deepEqual(
    [...perBlock].filter(([, n]) => n !== 1),
    [],
  );
});

test('a layer switched to its local copy is read from local files, and its image symlink points there', async (t) => {
  const fx = await fixture(t, SPEC);
  const { mount, mnt } = await mountFixture(t, fx);
  const cacheDir = await tempDirFor(t, 'gcfs-fuse-cache-');
  const local = await unpack(fx, 0, cacheDir.path);
  const expected = await sha256Of(join(local, 'a/big'));
  const fetches = collect<BlockFetchEvent>(mount, 'blockFetch');
  const reads = collect<ReadEvent>(mount, 'read');
  const link = join(mnt, 'images', imageDirName(fx.image), '0');
  assert.equal((await sh(`readlink '${link}'`)).stdout.trim(), streamedLayerTarget(fx.layers[0]!));

  mount.tree.switchLayer(fx.layers[0]!, local);
  assert.equal((await sh(`readlink '${link}'`)).stdout.trim(), local);
  assert.equal(await childSha256(join(mnt, 'layers', layerDirName(fx.layers[0]!), 'a/big')), expected);
  assert.equal(await childSha256(join(link, 'a/big')), expected);
  assert.equal(fetches.length, 0);
  assert.ok(reads.length > 0 && reads.every((e) => e.source === 'local'));
});

test('with the kernel cache on (the default), a re-read of a layer file never reaches gcfsd', async (t) => {
  const fx = await fixture(t, SPEC);
  const { mount, mnt } = await mountFixture(t, fx, { kernelCache: true });
  const path = join(mnt, 'layers', layerDirName(fx.layers[0]!), 'a/big');
  const reads = collect<ReadEvent>(mount, 'read');
  const first = await childSha256(path);
  const afterFirst = reads.length;
  assert.ok(afterFirst > 0);
  assert.equal(await childSha256(path), first);
  assert.equal(reads.length, afterFirst, 'the second read came from the page cache');
});

test('with cfsd down, streamed reads fail with EIO in bounded time, local layers keep working, and reads recover', async (t) => {
  const fx = await fixture(t, SPEC, {
    deadlines: { readBlocks: 1_000 },
    retry: { maxAttempts: 2, backoff: { initialMs: 20, maxMs: 100 } },
  });
  const { mount, mnt } = await mountFixture(t, fx, { content: { fetchTimeoutMs: 3_000 } });
  const cacheDir = await tempDirFor(t, 'gcfs-fuse-cache-');
  const local = await unpack(fx, 0, cacheDir.path);
  mount.tree.switchLayer(fx.layers[0]!, local);
  const errors = collect<{ error: Error }>(mount, 'readError');
  const streamed = join(mnt, 'layers', layerDirName(fx.layers[1]!), 'b/big');
  const reference = await tempDirFor(t, 'gcfs-fuse-ref-');
  const expected = await sha256Of(join(await unpack(fx, 1, reference.path), 'b/big'));

  await fx.stop();
  // The child's own timeout is the bound: a hang fails the test instead of passing it.
  await assert.rejects(sh(`cat '${streamed}' > /dev/null`, 30_000), /Input\/output error/);
  assert.ok(errors.length > 0);
  assert.equal(
    await childSha256(join(mnt, 'layers', layerDirName(fx.layers[0]!), 'a/big')),
    await sha256Of(join(local, 'a/big')),
  );

  await fx.start();
  let hash: string | undefined;
  for (let attempt = 0; hash === undefined && attempt < 40; attempt++) {
    hash = await childSha256(streamed, 30_000).catch(() => undefined);
    if (hash === undefined) await sleep(250);
  }
  assert.equal(hash, expected);
});
