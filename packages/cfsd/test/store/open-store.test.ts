import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { DEFAULT_MEMORY_STORE_BYTES, FileStore, MemoryStore, openStore } from '../../src/store/index.js';

test('file:///abs/dir opens a file store there', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-open-store-');
  const store = await openStore(`file://${join(dir.path, 'store')}`);
  t.after(() => store.close());
  assert.ok(store instanceof FileStore);
  assert.ok((await stat(join(dir.path, 'store', 'layers', 'sha256'))).isDirectory());
});

test('memory:// opens a memory store, bounded by max_bytes or the default', async () => {
  const bounded = await openStore('memory://?max_bytes=12345');
  assert.ok(bounded instanceof MemoryStore);
  assert.equal(bounded.maxBytes, 12345);
  const unbounded = await openStore('memory://');
  assert.equal((unbounded as MemoryStore).maxBytes, DEFAULT_MEMORY_STORE_BYTES);
});

test('anything else is a clear InvalidFlag error', async () => {
  for (const url of [
    '/var/lib/cfsd',
    'file://relative/dir',
    'file:///var/lib/cfsd?x=1',
    'memory://?max_bytes=0',
    'memory://?max_bytes=12MB',
    'memory://?max_bytes=-5',
    'registry://registry.example/cfsd-index',
    's3://bucket',
  ]) {
    await assert.rejects(
      openStore(url),
      (err) => isGcfsError(err, ErrorCode.InvalidFlag) && err.message.includes(JSON.stringify(url)),
      url,
    );
  }
});
