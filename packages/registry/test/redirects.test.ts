import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { disposeAfter, RedirectFront, tempDirFor } from '@gcfs/testkit';
import { clientFor, descriptorOf, pushImage, ref, registryFor } from './fixtures.js';

const SECRET = 'Bearer front-only-secret-4242';

test('redirects to another host are followed without Authorization or configured headers', async (t) => {
  const registry = await registryFor(t);
  const front = disposeAfter(t, await RedirectFront.start(registry), (f) => f.stop());
  const image = await pushImage(clientFor(t), ref(registry.host, 'redir/app'), {
    layerSizes: [5000, 2_000_000],
  });

  // Credentials configured for the front only (hosts.toml headers), the way a token would go.
  const hostsDir = await tempDirFor(t, 'gcfs-certs.d-');
  const [host, port] = front.host.split(':');
  await mkdir(join(hostsDir.path, `${host}_${port}_`));
  await writeFile(
    join(hostsDir.path, `${host}_${port}_`, 'hosts.toml'),
    `server = "${front.url}"\n[header]\n  authorization = "${SECRET}"\n  x-front-only = "yes"\n`,
  );
  const client = clientFor(t, { hostsDir: hostsDir.path });
  const viaFront = ref(front.host, 'redir/app');

  const resolved = await client.resolve(viaFront);
  assert.equal(resolved.manifestDigest, image.manifestDigest);
  const big = image.layers[1]!;
  assert.deepEqual(await client.fetchBlob(viaFront, big.descriptor), big.bytes);
  assert.deepEqual(
    await client.readBlobRange(viaFront, big.descriptor, 1_000_001, 4096),
    big.bytes.subarray(1_000_001, 1_000_001 + 4096),
  );
  assert.equal(await client.statBlob(viaFront, big.descriptor.digest), big.bytes.length);

  assert.ok(front.frontRequests.length > 0);
  assert.ok(
    front.frontRequests.every((r) => r.headers.authorization === SECRET),
    'the front got the header',
  );
  assert.ok(front.blobRequests.length >= 4, 'blobs were served by the blob host');
  for (const r of front.blobRequests) {
    assert.equal(
      r.headers.authorization,
      undefined,
      `Authorization leaked to the blob host: ${r.method} ${r.url}`,
    );
    assert.equal(r.headers['x-front-only'], undefined);
  }
  assert.ok(
    front.blobRequests.some((r) => r.headers.range === 'bytes=1000001-1004096'),
    'Range followed the redirect',
  );
});

test('a redirect to a plain-HTTP host not configured insecure is refused', async (t) => {
  const registry = await registryFor(t);
  const front = disposeAfter(t, await RedirectFront.start(registry), (f) => f.stop());
  const bytes = randomBytes(1000);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  await clientFor(t).pushBlob(ref(registry.host, 'redir/blob'), desc, bytes);
  const client = clientFor(t, { insecureHosts: [front.host, registry.host] });
  await assert.rejects(
    client.fetchBlob(ref(front.host, 'redir/blob'), desc),
    (err) => isGcfsError(err, ErrorCode.InsecureNotAllowed) && err.message.includes('127.0.0.3'),
  );
  assert.equal(front.blobRequests.length, 0);
});
