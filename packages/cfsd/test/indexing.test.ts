import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestOf, MediaType } from '@gcfs/core';
import { containerfs as pb } from '@gcfs/proto';
import { RegistryClient } from '@gcfs/registry';
import { type RunningRegistry, tempDirFor } from '@gcfs/testkit';
import { ALICE, privateRegistry, pushBuilt, readContent, runCfsd } from './harness.js';

const small = (name: string) => ({
  compression: 'gzip' as const,
  entries: [{ type: 'file' as const, path: `${name}.txt`, content: `${name}\n`.repeat(1000) }],
});

/** Push an image whose single layer is `blob`, announced with `mediaType`, bypassing the builder. */
async function pushRawLayer(registry: RunningRegistry, repository: string, blob: Buffer, mediaType: string) {
  const client = new RegistryClient({
    insecureHosts: ['127.0.0.1'],
    credentials: { [registry.host]: ALICE },
  });
  const ref = { registry: registry.host, repository };
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [digestOf(blob)] },
    }),
  );
  const configDesc = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
  const layerDesc = { mediaType, digest: digestOf(blob), size: blob.length };
  await client.pushBlob(ref, configDesc, config);
  await client.pushBlob(ref, layerDesc, blob);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: [layerDesc],
  };
  await client.pushManifest(
    { ...ref, tag: 'v1' },
    MediaType.OciManifest,
    Buffer.from(JSON.stringify(manifest)),
  );
  await client.close();
  return `${registry.host}/${repository}:v1`;
}

test('layers that cannot be indexed make the image not streamable, with the reason', async (t) => {
  const registry = await privateRegistry(t);
  const { client, storeDir } = await runCfsd(t);

  const corruptGzip = await pushRawLayer(
    registry,
    'public/corrupt-gzip',
    randomBytes(4096),
    MediaType.OciLayerGzip,
  );
  const notTar = await pushRawLayer(
    registry,
    'public/not-tar',
    Buffer.from('this is not a tar archive'.repeat(40)),
    MediaType.OciLayer,
  );
  // A tar whose member escapes the root, written by GNU tar itself.
  const dir = await tempDirFor(t, 'gcfs-hostile-');
  await mkdir(join(dir.path, 'in'));
  await writeFile(join(dir.path, 'in', 'passwd'), 'root::0:0::/:/bin/sh\n');
  execFileSync('tar', [
    '-C',
    join(dir.path, 'in'),
    '-P',
    '--transform=s,^,../../etc/,',
    '-cf',
    join(dir.path, 'l.tar'),
    'passwd',
  ]);
  const hostile = await pushRawLayer(
    registry,
    'public/hostile',
    await readFile(join(dir.path, 'l.tar')),
    MediaType.OciLayer,
  );
  // A layer tampered with in the registry's storage after the push: its digest no longer matches.
  const tampered = await pushBuilt(t, registry, 'public/tampered', { layers: [small('tampered')] });
  const blobPath = registry.blobDataPath(tampered.built.layers[0]!.descriptor.digest);
  const bytes = await readFile(blobPath);
  bytes[bytes.length - 20]! ^= 0xff;
  await writeFile(blobPath, bytes);

  for (const [image, why] of [
    [corruptGzip, /gzip|header|Z_DATA_ERROR|incorrect/i],
    [notTar, /tar|checksum|header/i],
    [hostile, /\.\.|escape|outside/i],
    [tampered.image, /digest/i],
  ] as const) {
    const res = await client.authImage({ image, wait: true });
    assert.equal(res.status, pb.ImageStatus.IMAGE_STATUS_NOT_STREAMABLE, image);
    assert.match(res.notStreamableReason, why, image);
    assert.equal(res.layers[0]!.status, pb.LayerStatus.LAYER_STATUS_FAILED);
    // Never served half-indexed: no content call works on the failed layer.
    await assert.rejects(
      client.readBlocks({
        sessionToken: res.sessionToken,
        layerDigest: res.layers[0]!.digest,
        firstBlock: 0,
        count: 1,
      }),
    );
  }
  // Nothing of the failed layers was kept as a layer.
  const kept = await readdir(join(storeDir, 'layers', 'sha256')).catch(() => []);
  assert.deepEqual(kept, []);
});

test('concurrent AuthImage of a new image indexes each layer once; a restart keeps the index', async (t) => {
  const registry = await privateRegistry(t);
  const { image } = await pushBuilt(t, registry, 'private/multi', {
    layers: [
      small('a'),
      small('b'),
      { compression: 'zstd', entries: [{ type: 'file', path: 'big', content: { size: 5 << 20, seed: 7 } }] },
    ],
  });
  const first = await runCfsd(t);
  const indexed: string[] = [];
  first.cfsd.indexer.on('indexed', (e) => indexed.push(e.digest));
  const answers = await Promise.all(
    Array.from({ length: 6 }, () => first.client.authImage({ image, credentials: ALICE, wait: true })),
  );
  for (const answer of answers) assert.equal(answer.status, pb.ImageStatus.IMAGE_STATUS_READY);
  assert.equal(indexed.length, 3);
  assert.equal(new Set(indexed).size, 3);
  const { blockSize } = answers[0]!.layers[2]!;
  const entry = (await first.client.layerIndex(answers[0]!.sessionToken, answers[0]!.layers[2]!.digest))
    .entries[0]!;
  const before = await readContent(
    first.client,
    answers[0]!.sessionToken,
    answers[0]!.layers[2]!.digest,
    blockSize,
    entry.contentOffset,
    entry.size,
  );
  await first.cfsd.stop();

  const second = await runCfsd(t, { storeDir: first.storeDir });
  second.cfsd.indexer.on('indexed', (e) => assert.fail(`re-indexed ${e.digest}`));
  const again = await second.client.authImage({ image, credentials: ALICE });
  assert.equal(again.status, pb.ImageStatus.IMAGE_STATUS_READY, 'ready at once, without waiting');
  const after = await readContent(
    second.client,
    again.sessionToken,
    again.layers[2]!.digest,
    blockSize,
    entry.contentOffset,
    entry.size,
  );
  assert.ok(after.equals(before));
});
