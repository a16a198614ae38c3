import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { curl, portAccepts, startRegistry } from '../src/index.js';
import { pullBlob, pushBlob } from './blob-with-curl.js';

test('open registry: push, pull, blob on disk, restart keeps port and storage, stop removes all', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
  assert.equal(registry.url, `http://${registry.host}`);
  assert.equal((await curl([`${registry.url}/v2/`])).status, 200);

  const data = randomBytes(3000);
  const { digest, finish } = await pushBlob(registry.url, 'test/open', data);
  assert.equal(finish?.status, 201, finish?.body.toString());
  assert.deepEqual((await pullBlob(registry.url, 'test/open', digest)).body, data);
  assert.deepEqual(await readFile(registry.blobDataPath(digest)), data);

  // Tampering is visible to clients: the registry serves the bytes as stored.
  const tampered = Buffer.from(data);
  tampered[0] = (tampered[0] ?? 0) ^ 0xff;
  await writeFile(registry.blobDataPath(digest), tampered);
  assert.deepEqual((await pullBlob(registry.url, 'test/open', digest)).body, tampered);

  await registry.restart();
  assert.equal((await pullBlob(registry.url, 'test/open', digest)).status, 200);
  assert.match(await registry.logs(), /listening on 127\.0\.0\.1/);

  const port = Number(registry.host.split(':')[1]);
  await registry.stop();
  await registry.stop();
  assert.equal(await portAccepts(port), false);
  await assert.rejects(stat(registry.storageDir), { code: 'ENOENT' });
});

test('htpasswd registry accepts the right password and refuses a wrong one', async (t) => {
  const registry = await startRegistry({
    auth: 'htpasswd',
    users: [{ username: 'alice', password: 'wonder land' }],
  });
  t.after(() => registry.stop());

  const anonymous = await curl([`${registry.url}/v2/`]);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers['www-authenticate'] ?? '', /^Basic realm="gcfs-test"/);
  assert.equal((await curl(['-u', 'alice:wonder land', `${registry.url}/v2/`])).status, 200);
  assert.equal((await curl(['-u', 'alice:wrong', `${registry.url}/v2/`])).status, 401);
  assert.equal((await curl(['-u', 'mallory:wonder land', `${registry.url}/v2/`])).status, 401);

  const data = randomBytes(100);
  const pushed = await pushBlob(registry.url, 'test/basic', data, ['-u', 'alice:wonder land']);
  assert.equal(pushed.finish?.status, 201);
  assert.equal((await pullBlob(registry.url, 'test/basic', pushed.digest)).status, 401);
  const pulled = await pullBlob(registry.url, 'test/basic', pushed.digest, ['-u', 'alice:wonder land']);
  assert.deepEqual(pulled.body, data);
});
