import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestHex, ErrorCode, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { FileStore, STORE_CORRUPT_CHANNEL, type StoreCorruptEvent } from '../../src/store/index.js';
import { assertLayer, randomLayer, type TestLayer, writeLayer } from './fixtures.js';

function layerDir(root: string, layer: TestLayer): string {
  return join(root, 'layers', 'sha256', digestHex(layer.digest));
}

/** Corruption events of one store root, recorded for the whole test. */
function recordCorruption(t: { after(fn: () => unknown): void }, root: string): StoreCorruptEvent[] {
  const events: StoreCorruptEvent[] = [];
  const listener = (message: unknown) => {
    const event = message as StoreCorruptEvent;
    if (event.root === root) events.push(event);
  };
  diagnosticsChannel.subscribe(STORE_CORRUPT_CHANNEL, listener);
  t.after(() => diagnosticsChannel.unsubscribe(STORE_CORRUPT_CHANNEL, listener));
  return events;
}

test('the layout on disk: a directory per layer with its manifest, failures as json, tmp empty', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const store = await FileStore.open(dir.path);
  t.after(() => store.close());
  const layer = randomLayer(7);
  await writeLayer(store, layer);
  await store.markFailed(randomLayer(0).digest, 'bad');
  assert.deepEqual((await readdir(layerDir(dir.path, layer))).sort(), [
    'blocks',
    'blocks.table',
    'index',
    'manifest.json',
  ]);
  const manifest = JSON.parse(await readFile(join(layerDir(dir.path, layer), 'manifest.json'), 'utf8'));
  assert.equal(manifest.digest, layer.digest);
  assert.equal(manifest.blockCount, 7);
  assert.equal((await readdir(join(dir.path, 'failed', 'sha256'))).length, 1);
  assert.deepEqual(await readdir(join(dir.path, 'tmp')), []);
  assert.equal((await readFile(join(dir.path, 'lock'), 'utf8')).trim(), String(process.pid));
});

test('abort and a discarded second commit leave tmp empty', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const store = await FileStore.open(dir.path);
  t.after(() => store.close());
  const layer = randomLayer(4);
  const writer = await store.begin(layer.digest);
  await writer.appendBlock(layer.blocks[0]!);
  assert.equal((await readdir(join(dir.path, 'tmp'))).length, 1);
  await writer.abort();
  const [a, b] = [await store.begin(layer.digest), await store.begin(layer.digest)];
  await a.commit(layer.index);
  await b.commit(layer.index);
  assert.deepEqual(await readdir(join(dir.path, 'tmp')), []);
});

test('one process per directory: a second open is refused until the first closes', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const store = await FileStore.open(dir.path);
  await assert.rejects(FileStore.open(dir.path), (err) => isGcfsError(err, ErrorCode.Config));
  await store.close();
  await assert.rejects(store.get(randomLayer(0).digest), /closed/);
  const again = await FileStore.open(dir.path);
  await again.close();
  // A lock left by a process that is gone is taken over.
  await writeFile(join(dir.path, 'lock'), '999999999\n');
  await (await FileStore.open(dir.path)).close();
});

test('open removes leftovers in tmp and layer directories without a manifest', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const events = recordCorruption(t, dir.path);
  const store = await FileStore.open(dir.path);
  const kept = randomLayer(3);
  const broken = randomLayer(3);
  await writeLayer(store, kept);
  await writeLayer(store, broken);
  await store.close();
  await mkdir(join(dir.path, 'tmp', 'half-written'), { recursive: true });
  await writeFile(join(dir.path, 'tmp', 'half-written', 'blocks'), 'xx');
  await rm(join(layerDir(dir.path, broken), 'manifest.json'));

  const reopened = await FileStore.open(dir.path);
  t.after(() => reopened.close());
  assert.deepEqual(await readdir(join(dir.path, 'tmp')), []);
  assert.deepEqual(await reopened.list(), [kept.digest]);
  assert.equal(await reopened.get(broken.digest), undefined);
  await assert.rejects(stat(layerDir(dir.path, broken)), { code: 'ENOENT' });
  assert.deepEqual(
    events.map((e) => e.digest),
    [broken.digest],
  );
  await assertLayer(reopened, kept);
  await writeLayer(reopened, broken);
  await assertLayer(reopened, broken);
});

test('a truncated blocks file is found at open and the layer is not served', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const events = recordCorruption(t, dir.path);
  const store = await FileStore.open(dir.path);
  const layer = randomLayer(10, 4000);
  await writeLayer(store, {
    ...layer,
    blocks: layer.blocks.map((b, i) => (i === 9 ? Buffer.alloc(100, 1) : b)),
  });
  await store.close();
  const blocks = join(layerDir(dir.path, layer), 'blocks');
  await truncate(blocks, (await stat(blocks)).size - 1);

  const reopened = await FileStore.open(dir.path);
  t.after(() => reopened.close());
  assert.equal(await reopened.get(layer.digest), undefined);
  await assert.rejects(reopened.readBlocks(layer.digest, 0, 1), (err) =>
    isGcfsError(err, ErrorCode.NotFound),
  );
  assert.deepEqual(await reopened.list(), []);
  assert.match(events[0]?.reason ?? '', /blocks has/);
  await writeLayer(reopened, layer);
  await assertLayer(reopened, layer);
});

test('a blocks file cut while the layer is open fails the read as corrupt and drops the layer', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const events = recordCorruption(t, dir.path);
  const store = await FileStore.open(dir.path);
  t.after(() => store.close());
  const layer = randomLayer(6, 3000);
  layer.blocks[5] = Buffer.alloc(50, 7);
  await writeLayer(store, layer);
  await assertLayer(store, layer); // loaded, its blocks file open
  await truncate(join(layerDir(dir.path, layer), 'blocks'), 10);
  await assert.rejects(store.readBlocks(layer.digest, 4, 2), (err) =>
    isGcfsError(err, ErrorCode.StoreCorrupt),
  );
  assert.equal(await store.get(layer.digest), undefined);
  assert.equal(events.length, 1);
  await writeLayer(store, layer);
  await assertLayer(store, layer);
});

test('an index whose bytes changed is caught by its checksum when the layer is loaded', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const store = await FileStore.open(dir.path);
  const layer = { ...randomLayer(2), index: Buffer.from('the index, intact') };
  await writeLayer(store, layer);
  await store.close();
  await writeFile(join(layerDir(dir.path, layer), 'index'), 'the index, damaged');

  const reopened = await FileStore.open(dir.path);
  t.after(() => reopened.close());
  assert.equal(await reopened.get(layer.digest), undefined);
  assert.deepEqual(await reopened.list(), []);
});

test('many layers through a small handle cache: evicted handles close, reads stay correct', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  const store = await FileStore.open(dir.path, { openLayers: 2 });
  t.after(() => store.close());
  const layers = Array.from({ length: 12 }, () => randomLayer(5, 2000));
  for (const layer of layers) await writeLayer(store, layer);
  const fds = async () => (await readdir('/proc/self/fd')).length;
  const before = await fds();
  await Promise.all(
    Array.from({ length: 120 }, async (_, i) => {
      const layer = layers[i % layers.length]!;
      const read = await store.readBlocks(layer.digest, i % 5, 2);
      assert.ok(read[0]?.equals(layer.blocks[i % 5]!));
    }),
  );
  for (const layer of layers) await assertLayer(store, layer);
  // Two cached handles, and at most one close still on its way.
  assert.ok((await fds()) <= before + 3, 'evicted handles are closed');
});
