import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { freePort, tempDirFor } from '@gcfs/testkit';
import type { FallbackEvent, RegistryClient, RequestEvent } from '../src/index.js';
import { clientFor, pushImage, ref, registryFor } from './fixtures.js';

function watch(client: RegistryClient): { requests: RequestEvent[]; fallbacks: FallbackEvent[] } {
  const seen = { requests: [] as RequestEvent[], fallbacks: [] as FallbackEvent[] };
  client.on('request', (e) => seen.requests.push(e));
  client.on('fallback', (e) => seen.fallbacks.push(e));
  return seen;
}

test('hosts.toml mirrors: a dead mirror and a 404ing mirror fall back; pushes go to the origin', async (t) => {
  const [origin, mirror] = await Promise.all([registryFor(t), registryFor(t)]);
  const dead = `127.0.0.1:${await freePort()}`;
  const hostsDir = await tempDirFor(t, 'gcfs-certs.d-');
  // The origin is named by a registry host that resolves nowhere: only hosts.toml makes it reachable.
  const name = 'registry.invalid:5000';
  await mkdir(join(hostsDir.path, 'registry.invalid_5000_'));
  await writeFile(
    join(hostsDir.path, 'registry.invalid_5000_', 'hosts.toml'),
    `server = "${origin.url}"\n\n[host."http://${dead}"]\n  capabilities = ["pull", "resolve"]\n\n` +
      `[host."${mirror.url}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
  const client = clientFor(t, { hostsDir: hostsDir.path, maxAttempts: 3 });
  const seen = watch(client);

  // Pushes go to the origin only (the mirrors are not asked).
  const onOrigin = await pushImage(client, ref(name, 'team/app'));
  assert.ok(
    seen.requests.every((r) => r.url.startsWith(origin.url)),
    'pushes only reach the origin',
  );
  // The mirror holds its own copy of another image (as a pull-through cache would).
  const onMirror = await pushImage(clientFor(t), ref(mirror.host, 'team/cached'));

  seen.requests.length = 0;
  const cached = await client.resolve(ref(name, 'team/cached'));
  assert.equal(cached.manifestDigest, onMirror.manifestDigest);
  assert.ok(seen.fallbacks.some((f) => f.endpoint.includes(dead) && f.next.startsWith(mirror.url)));
  assert.equal(
    seen.requests.filter((r) => r.url.includes(dead)).length,
    2,
    'one attempt per call, no retries',
  );
  assert.ok(
    seen.requests
      .filter((r) => r.url.startsWith(mirror.url))
      .every((r) => r.url.includes('ns=registry.invalid')),
  );
  assert.ok(!seen.requests.some((r) => r.url.startsWith(origin.url)), 'the origin was not needed');

  seen.fallbacks.length = 0;
  const fromOrigin = await client.resolve(ref(name, 'team/app'));
  assert.equal(fromOrigin.manifestDigest, onOrigin.manifestDigest);
  assert.deepEqual(
    await client.fetchBlob(fromOrigin.reference, onOrigin.layers[1]!.descriptor),
    onOrigin.layers[1]!.bytes,
  );
  assert.ok(seen.fallbacks.some((f) => f.endpoint.startsWith(mirror.url) && f.reason === 'HTTP 404'));

  // When nobody has it, the origin's answer is the one that counts.
  await assert.rejects(client.resolve(ref(name, 'team/none')), (err) => isGcfsError(err, ErrorCode.NotFound));
});

test('a mirror limited to pull is not asked to resolve tags', async (t) => {
  const [origin, mirror] = await Promise.all([registryFor(t), registryFor(t)]);
  const hostsDir = await tempDirFor(t, 'gcfs-certs.d-');
  const [host, port] = origin.host.split(':');
  await mkdir(join(hostsDir.path, `${host}_${port}_`));
  await writeFile(
    join(hostsDir.path, `${host}_${port}_`, 'hosts.toml'),
    `server = "${origin.url}"\n[host."${mirror.url}"]\n  capabilities = ["pull"]\n`,
  );
  const image = await pushImage(clientFor(t), ref(origin.host, 'team/app'));
  await pushImage(clientFor(t), ref(mirror.host, 'team/app')); // same name, different content
  const client = clientFor(t, { hostsDir: hostsDir.path });
  const seen = watch(client);
  const resolved = await client.getManifest(ref(origin.host, 'team/app'));
  assert.equal(resolved.digest, image.manifestDigest, 'the tag was resolved by the origin');
  assert.ok(!seen.requests.some((r) => r.url.startsWith(mirror.url)));
});
