import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { digestHex, digestOf } from '@gcfs/core';
import { startProcess, tempDirFor } from '@gcfs/testkit';
import { FileStore } from '../../src/store/index.js';
import { assertLayer, seededLayer, type TestLayer, writeLayer } from './fixtures.js';

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
const BLOCKS = 16;
const BLOCK_SIZE = 48 * 1024;

const layerDir = (root: string, layer: TestLayer) => join(root, 'layers', 'sha256', digestHex(layer.digest));

/** `seed`'s blocks and index under the digest of `replaced`: a new copy of that layer. */
function copyOf(replaced: TestLayer, seed: string): TestLayer {
  return { ...seededLayer(seed, BLOCKS, BLOCK_SIZE), digest: replaced.digest };
}

async function withStore(root: string, fn: (store: FileStore) => Promise<void>): Promise<void> {
  const store = await FileStore.open(root);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

test('a replacing writer killed at random points leaves the old copy or the new one, whole', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-replace-crash-');
  for (let trial = 0; trial < 8; trial++) {
    const oldSeed = `old ${trial} ${randomInt(1 << 30)}`;
    const old = seededLayer(oldSeed, BLOCKS, BLOCK_SIZE);
    const newSeed = `new ${trial}`;
    const fresh = copyOf(old, newSeed);
    await withStore(dir.path, (store) => writeLayer(store, old));
    const k = randomInt(0, BLOCKS + 2);
    const point = k < BLOCKS ? new RegExp(`appended ${k}\\n`) : k === BLOCKS ? /committing/ : /committed/;
    const child = await startProcess({
      name: `replacing writer ${trial}`,
      command: process.execPath,
      args: [WRITER, dir.path, newSeed, String(BLOCKS), String(BLOCK_SIZE), oldSeed],
    });
    t.after(() => child.stop());
    await child.waitReady({ logLine: point }, 30_000);
    process.kill(child.pid!, 'SIGKILL');
    await child.waitForExit();
    const said = child.output();

    await withStore(dir.path, async (store) => {
      const stored = await store.get(old.digest);
      assert.ok(stored, `trial ${trial}: a copy survives`);
      const which = stored.index.equals(fresh.index) ? fresh : old;
      await assertLayer(store, which);
      if (/committed/.test(said)) assert.equal(which, fresh, `trial ${trial}: committed means new`);
      if (!/commit/.test(said)) assert.equal(which, old, `trial ${trial}: old until the commit`);
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [], `trial ${trial}: tmp cleaned`);
      assert.deepEqual(await store.list(), [old.digest]);
      await store.delete(old.digest);
    });
  }
});

test('a swap interrupted between its renames is finished or undone at open', async (t) => {
  const root = (await tempDirFor(t, 'gcfs-replace-crash-')).path;
  const other = (await tempDirFor(t, 'gcfs-replace-crash-')).path;
  const old = seededLayer('swap old', BLOCKS, BLOCK_SIZE);
  const fresh = copyOf(old, 'swap new');
  await withStore(root, (store) => writeLayer(store, old));
  await withStore(other, (store) => writeLayer(store, fresh));
  const target = layerDir(root, old);
  const aside = `${target}.replaced`;

  // Killed after the old copy went aside, the new one still in tmp/: the old copy comes back.
  await rename(target, aside);
  await rename(layerDir(other, fresh), join(root, 'tmp', 'new-copy'));
  await withStore(root, async (store) => {
    await assertLayer(store, old);
    assert.deepEqual(await store.list(), [old.digest]);
  });

  // Killed after the new copy went in, the old one still aside: the new copy stays.
  await rename(target, aside);
  await withStore(other, (store) => writeLayer(store, fresh));
  await rename(layerDir(other, fresh), target);
  await withStore(root, async (store) => {
    await assertLayer(store, fresh);
    assert.deepEqual(await readdir(join(root, 'layers', 'sha256')), [digestHex(digestOf('swap old'))]);
  });
});
