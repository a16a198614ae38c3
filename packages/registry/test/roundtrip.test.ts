import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { digestOf, ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import type { RunningRegistry } from '@gcfs/testkit';
import type { RegistryClient, RequestEvent } from '../src/index.js';
import { clientFor, descriptorOf, pushImage, ref, registryFor, suiteCleanup } from './fixtures.js';

describe('against an open docker-registry', () => {
  const suite = suiteCleanup();
  let registry: RunningRegistry;
  let client: RegistryClient;
  before(async () => {
    registry = await registryFor(suite);
    client = clientFor(suite);
  });

  test('push, resolve by tag and digest, fetch every blob', async () => {
    const image = await pushImage(client, ref(registry.host, 'team/app'));
    const resolved = await client.resolve(`${registry.host}/team/app:v1`);
    assert.equal(resolved.manifestDigest, image.manifestDigest);
    assert.equal(resolved.indexDigest, undefined);
    assert.equal(resolved.mediaType, MediaType.OciManifest);
    assert.equal(String(resolved.reference), `${registry.host}/team/app:v1@${image.manifestDigest}`);
    assert.deepEqual(resolved.manifestBytes, image.manifestBytes);
    assert.deepEqual(resolved.config, image.config);
    assert.deepEqual(
      resolved.manifest.layers.map((l) => l.digest),
      image.layers.map((l) => l.descriptor.digest),
    );
    const byDigest = await client.resolve(`${registry.host}/team/app@${image.manifestDigest}`);
    assert.equal(byDigest.manifestDigest, image.manifestDigest);
    for (const layer of image.layers) {
      assert.deepEqual(await client.fetchBlob(resolved.reference, layer.descriptor), layer.bytes);
      assert.equal(await client.statBlob(resolved.reference, layer.descriptor.digest), layer.bytes.length);
    }
  });

  test('pushBlob skips blobs the registry has, and streams uploads with PATCH', async (t) => {
    const target = ref(registry.host, 'team/stream');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const desc = descriptorOf(MediaType.OciLayer, bytes);
    const methods: string[] = [];
    const onRequest = (e: RequestEvent) => methods.push(e.method);
    client.on('request', onRequest);
    t.after(() => client.off('request', onRequest));
    await client.pushBlob(target, desc, () => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]));
    assert.deepEqual(methods, ['HEAD', 'POST', 'PATCH', 'PUT']);
    methods.length = 0;
    await client.pushBlob(target, desc, bytes);
    assert.deepEqual(methods, ['HEAD'], 'an existing blob is not uploaded again');
    assert.deepEqual(await client.fetchBlob(target, desc), bytes);
    await assert.rejects(client.pushBlob(target, { ...desc, digest: digestOf('other') }, bytes), (err) =>
      isGcfsError(err, ErrorCode.DigestMismatch),
    );
    // A stream that does not match its descriptor is refused, by us (size) or by the registry (digest).
    const other = randomBytes(1000);
    await assert.rejects(
      client.pushBlob(target, descriptorOf(MediaType.OciLayer, other), () => Readable.from([other, other])),
      (err) => isGcfsError(err, ErrorCode.SizeMismatch),
    );
    const twin = Buffer.from(other).fill(7, 0, 1);
    await assert.rejects(
      client.pushBlob(target, descriptorOf(MediaType.OciLayer, other), () => Readable.from([twin])),
      (err) => isGcfsError(err, ErrorCode.DigestMismatch),
    );
  });

  test('an index is followed to the configured platform', async (t) => {
    const repo = ref(registry.host, 'team/multi', 'multi');
    const amd = await pushImage(client, repo, {
      platform: { os: 'linux', architecture: 'amd64' },
      tag: false,
    });
    const arm = await pushImage(client, repo, {
      platform: { os: 'linux', architecture: 'arm64' },
      tag: false,
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            ...descriptorOf(MediaType.OciManifest, amd.manifestBytes),
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            ...descriptorOf(MediaType.OciManifest, arm.manifestBytes),
            platform: { os: 'linux', architecture: 'arm64' },
          },
        ],
      }),
    );
    const indexDigest = await client.pushManifest(repo, MediaType.OciIndex, index);
    const amdResolved = await client.resolve(repo);
    assert.equal(amdResolved.indexDigest, indexDigest);
    assert.equal(amdResolved.manifestDigest, amd.manifestDigest);
    const armClient = clientFor(t, { platform: { os: 'linux', architecture: 'arm64' } });
    const armResolved = await armClient.resolve(repo);
    assert.equal(armResolved.manifestDigest, arm.manifestDigest);
    assert.equal(armResolved.config?.architecture, 'arm64');
    const s390 = clientFor(t, { platform: { os: 'linux', architecture: 's390x' } });
    await assert.rejects(
      s390.resolve(repo),
      (err) =>
        isGcfsError(err, ErrorCode.PlatformNotFound) && /linux\/amd64, linux\/arm64/.test(err.hint ?? ''),
    );
    const raw = await client.getManifest(repo);
    assert.equal(raw.mediaType, MediaType.OciIndex);
    assert.equal(raw.digest, indexDigest);
  });

  test('single Range reads', async () => {
    const target = ref(registry.host, 'team/range');
    const bytes = randomBytes(1024 * 1024 + 3);
    const desc = descriptorOf(MediaType.OciLayer, bytes);
    await client.pushBlob(target, desc, bytes);
    for (const [offset, length] of [
      [0, 1],
      [0, bytes.length],
      [12345, 65536],
      [bytes.length - 1, 1],
      [500, 0],
    ] as const) {
      assert.deepEqual(
        await client.readBlobRange(target, desc, offset, length),
        bytes.subarray(offset, offset + length),
        `${offset}+${length}`,
      );
    }
    await assert.rejects(client.readBlobRange(target, desc, bytes.length - 1, 2), (err) =>
      isGcfsError(err, ErrorCode.InvalidArgument),
    );
  });

  test('aborting a blob stream ends it with ERR_ABORTED', async () => {
    const target = ref(registry.host, 'team/abort');
    const bytes = randomBytes(8 * 1024 * 1024);
    const desc = descriptorOf(MediaType.OciLayer, bytes);
    await client.pushBlob(target, desc, bytes);
    const controller = new AbortController();
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of client.openBlobStream(target, desc, { signal: controller.signal })) {
          received += (chunk as Buffer).length;
          controller.abort();
        }
      })(),
      (err) => isGcfsError(err, ErrorCode.Aborted),
    );
    assert.ok(received < bytes.length);
    await assert.rejects(client.fetchBlob(target, desc, { signal: controller.signal }), (err) =>
      isGcfsError(err, ErrorCode.Aborted),
    );
  });

  test('404s: unknown tags, repositories and blobs', async () => {
    await pushImage(client, ref(registry.host, 'team/known'));
    const missing = { mediaType: MediaType.OciLayer, digest: digestOf('missing'), size: 7 };
    for (const attempt of [
      () => client.resolve(`${registry.host}/team/known:nope`),
      () => client.getManifest(`${registry.host}/team/unknown:v1`),
      () => client.getManifest(`${registry.host}/team/known@${digestOf('nothing')}`),
      () => client.fetchBlob(`${registry.host}/team/known`, missing),
      () => client.readBlobRange(`${registry.host}/team/known`, missing, 0, 3),
      () => client.statBlob(`${registry.host}/team/known`, missing.digest),
    ]) {
      await assert.rejects(attempt(), (err) => isGcfsError(err, ErrorCode.NotFound));
    }
  });
});
