import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { digestOf, ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { clientFor, descriptorOf, pushImage, ref, registryFor } from './fixtures.js';

test('a tampered blob fails with ERR_DIGEST_MISMATCH and is never returned as valid', async (t) => {
  const registry = await registryFor(t);
  const client = clientFor(t);
  const target = ref(registry.host, 'tamper/blob');
  const bytes = randomBytes(3 * 1024 * 1024);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  await client.pushBlob(target, desc, bytes);
  const stored = registry.blobDataPath(desc.digest);
  const evil = Buffer.from(await readFile(stored));
  evil[evil.length - 10] = (evil[evil.length - 10]! + 1) % 256; // same size, one byte differs
  await writeFile(stored, evil);

  await assert.rejects(client.fetchBlob(target, desc), (err) => isGcfsError(err, ErrorCode.DigestMismatch));

  // The stream hands data over as it comes, but errors instead of ending.
  const stream = client.openBlobStream(target, desc);
  let received = 0;
  let ended = false;
  stream.on('end', () => {
    ended = true;
  });
  const failure = await (async () => {
    for await (const chunk of stream) received += (chunk as Buffer).length;
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(isGcfsError(failure, ErrorCode.DigestMismatch), String(failure));
  assert.equal(ended, false, "'end' never comes for wrong content");
  assert.equal(received, bytes.length);

  // A truncated blob is a size mismatch, found before any data is handed over.
  await writeFile(stored, evil.subarray(0, 1000));
  let chunks = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of client.openBlobStream(target, desc)) chunks++;
    })(),
    (err) => isGcfsError(err, ErrorCode.SizeMismatch),
  );
  assert.equal(chunks, 0);
});

test('a tampered manifest fails verification, by tag and by digest', async (t) => {
  const registry = await registryFor(t);
  const client = clientFor(t);
  const image = await pushImage(client, ref(registry.host, 'tamper/app'));
  // Same length, other content: the registry serves it under the original digest.
  const evil = Buffer.from(image.manifestBytes.toString('utf8').replace('"size":1000', '"size":1001'));
  assert.notEqual(digestOf(evil), image.manifestDigest);
  await writeFile(registry.blobDataPath(image.manifestDigest), evil);
  for (const reference of [
    `${registry.host}/tamper/app:v1`,
    `${registry.host}/tamper/app@${image.manifestDigest}`,
  ]) {
    await assert.rejects(
      client.resolve(reference),
      (err) => isGcfsError(err, ErrorCode.DigestMismatch),
      reference,
    );
  }
});
