import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { RegistryClient } from '@gcfs/registry';
import { diffTrees, gnuTarExtract, snapshotTree, startRegistry, tempDirFor } from '@gcfs/testkit';
import { buildImage, buildIndex, OciLayout, pushImage } from '../src/index.js';
import { ENTRIES, expectedTree } from './fixtures.js';

const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

test('a multi-platform image pushed to a real registry resolves and every blob comes back equal', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const client = new RegistryClient({ insecureHosts: [registry.host] });
  t.after(() => client.close());
  const dir = await tempDirFor(t);
  const built = await buildIndex(
    {
      manifests: PLATFORMS.map((platform) => ({
        platform,
        config: { cmd: ['/bin/tool'] },
        layers: [
          { compression: 'gzip', entries: ENTRIES },
          {
            compression: 'zstd',
            entries: [
              { type: 'file', path: 'arch', content: platform.architecture },
              // Several MiB, so the client streams the upload rather than sending one buffer.
              { type: 'file', path: 'big', content: { size: 5 * 1024 * 1024, seed: 'push' } },
            ],
          },
        ],
      })),
    },
    { layoutDir: dir.path },
  );
  const ref = { registry: registry.host, repository: 'gcfs/built', tag: 'v1' };
  assert.equal(await pushImage(client, built, ref), built.indexDigest);

  const resolved = await client.resolve(`${registry.host}/gcfs/built:v1`);
  assert.equal(resolved.indexDigest, built.indexDigest);
  assert.equal(resolved.manifestDigest, built.manifests[0]?.descriptor.digest);
  assert.deepEqual(resolved.config?.config, { Cmd: ['/bin/tool'] });

  const layout = await OciLayout.open(built.layoutDir);
  const repo = { registry: registry.host, repository: 'gcfs/built' };
  for (const manifest of built.manifests) {
    const fetched = await client.getManifest({ ...repo, digest: manifest.descriptor.digest });
    assert.deepEqual(fetched.bytes, await layout.readBlob(manifest.descriptor.digest));
    for (const desc of [manifest.configDescriptor, ...manifest.layers.map((l) => l.descriptor)]) {
      assert.deepEqual(await client.fetchBlob(repo, desc), await layout.readBlob(desc.digest), desc.digest);
    }
  }

  // The full round trip: what came back from the registry extracts to what the spec says.
  const layer = resolved.manifest.layers[0]!;
  const blobFile = join(dir.path, 'fetched.tar.gz');
  await writeFile(blobFile, await client.fetchBlob(repo, layer));
  await gnuTarExtract(blobFile, join(dir.path, 'out'), { compression: 'gzip' });
  assert.deepEqual(diffTrees(await expectedTree(ENTRIES), await snapshotTree(join(dir.path, 'out'))), []);
});

test('a single-platform image is pushed under its tag', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const client = new RegistryClient({ insecureHosts: [registry.host] });
  t.after(() => client.close());
  const dir = await tempDirFor(t);
  const built = await buildImage(
    { layers: [{ entries: [{ type: 'file', path: 'hello', content: 'world' }] }] },
    { layoutDir: dir.path, format: 'docker' },
  );
  const ref = { registry: registry.host, repository: 'gcfs/single', tag: 'latest' };
  assert.equal(await pushImage(client, built, ref), built.manifestDigest);
  // Pushing again is harmless: blobs the registry has are skipped.
  assert.equal(await pushImage(client, built, ref), built.manifestDigest);
  const resolved = await client.resolve(`${registry.host}/gcfs/single:latest`);
  assert.equal(resolved.manifestDigest, built.manifestDigest);
  assert.equal(resolved.indexDigest, undefined);
  assert.equal(resolved.mediaType, built.root.mediaType);
});
