import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { digestOf, ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { disposeAfter } from '@gcfs/testkit';
import { clientFor, registryFor } from './fixtures.js';

// A schema 1 manifest as old Docker pushed them (signature left out: nobody checks it here).
const SCHEMA1 = Buffer.from(
  JSON.stringify({
    schemaVersion: 1,
    name: 'old/app',
    tag: 'v1',
    architecture: 'amd64',
    fsLayers: [{ blobSum: digestOf('layer') }],
    history: [{ v1Compatibility: '{"id":"1"}' }],
  }),
);

test('distribution 2.8 refuses to store this (unsigned) schema 1 manifest', async (t) => {
  const registry = await registryFor(t);
  const client = clientFor(t);
  await assert.rejects(
    client.pushManifest(`${registry.host}/old/app:v1`, MediaType.DockerSchema1Signed, SCHEMA1),
    (err) => isGcfsError(err, ErrorCode.RegistryProtocol) && /MANIFEST_INVALID/.test(err.message),
  );
});

// Since the registry will not store one, a tiny node:http server plays an old registry serving one.
test('a schema 1 manifest is rejected with a clear error and a hint', async (t) => {
  for (const contentType of [MediaType.DockerSchema1Signed, 'application/json']) {
    const server = createServer((req, res) => {
      if (req.url === '/v2/old/app/manifests/v1') {
        res.writeHead(200, { 'content-type': contentType, 'docker-content-digest': digestOf(SCHEMA1) });
        res.end(SCHEMA1);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    disposeAfter(t, server, (s) => new Promise((resolve) => s.close(resolve)));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    const client = clientFor(t);
    const raw = await client.getManifest(`127.0.0.1:${address.port}/old/app:v1`);
    assert.equal(raw.mediaType, contentType === 'application/json' ? MediaType.DockerSchema1 : contentType);
    await assert.rejects(
      client.resolve(`127.0.0.1:${address.port}/old/app:v1`),
      (err) =>
        isGcfsError(err, ErrorCode.UnsupportedSchema) &&
        /schema 1/.test(err.message) &&
        /re-push/.test(err.hint ?? ''),
    );
  }
});
