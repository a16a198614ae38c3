import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Descriptor, MediaType, parseDescriptor } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { type BuildResult, buildImage, buildIndex, type ImageSpec, imageOfLayers } from '../src/index.js';

const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function blob(built: BuildResult, desc: Descriptor): Promise<Buffer> {
  const bytes = await readFile(join(built.layoutDir, 'blobs/sha256', desc.digest.slice('sha256:'.length)));
  // Every descriptor we wrote must be the truth about the bytes it points at.
  assert.equal(sha256(bytes), desc.digest);
  assert.equal(bytes.length, desc.size);
  return bytes;
}

async function json(built: BuildResult, desc: Descriptor): Promise<Record<string, unknown>> {
  return JSON.parse((await blob(built, desc)).toString('utf8'));
}

const IMAGE: ImageSpec = {
  config: {
    entrypoint: ['/bin/app'],
    cmd: ['--serve'],
    env: ['PATH=/bin', 'MODE=test'],
    workingDir: '/srv',
    user: '1000:1000',
    labels: { purpose: 'test' },
  },
  created: '2024-01-02T03:04:05Z',
  annotations: { 'org.opencontainers.image.title': 'app' },
  layers: [
    { compression: 'gzip', entries: [{ type: 'file', path: 'bin/app', mode: 0o755, content: 'app' }] },
    { compression: 'none', entries: [{ type: 'dir', path: 'srv' }], annotations: { layer: 'two' } },
    { compression: 'zstd', entries: [{ type: 'whiteout', path: 'bin/old' }] },
  ],
};

test('manifest, config and layout describe exactly the blobs written', async (t) => {
  const dir = await tempDirFor(t);
  const built = await buildImage(IMAGE, { layoutDir: dir.path, tag: 'v1' });
  assert.equal(built.root.digest, built.manifestDigest);
  assert.equal(built.indexDigest, undefined);

  const manifest = await json(built, built.root);
  assert.equal(manifest.schemaVersion, 2);
  assert.equal(manifest.mediaType, MediaType.OciManifest);
  assert.deepEqual(manifest.annotations, IMAGE.annotations);
  assert.deepEqual(parseDescriptor(manifest.config), built.configDescriptor);
  const layers = (manifest.layers as unknown[]).map((l) => parseDescriptor(l));
  assert.deepEqual(
    layers.map((l) => l.mediaType),
    [MediaType.OciLayerGzip, MediaType.OciLayer, MediaType.OciLayerZstd],
  );
  assert.deepEqual(layers[1]?.annotations, { layer: 'two' });
  assert.deepEqual(
    layers,
    built.layers.map((l) => l.descriptor),
  );
  for (const layer of layers) await blob(built, layer);

  const config = await json(built, built.configDescriptor);
  assert.equal(built.configDescriptor.mediaType, MediaType.OciConfig);
  assert.deepEqual(config, {
    created: '2024-01-02T03:04:05Z',
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: '1000:1000',
      Env: ['PATH=/bin', 'MODE=test'],
      Entrypoint: ['/bin/app'],
      Cmd: ['--serve'],
      WorkingDir: '/srv',
      Labels: { purpose: 'test' },
    },
    rootfs: { type: 'layers', diff_ids: built.layers.map((l) => l.diffId) },
  });
  // An uncompressed layer's diffID is its digest.
  assert.equal(built.layers[1]?.diffId, built.layers[1]?.descriptor.digest);
  assert.notEqual(built.layers[0]?.diffId, built.layers[0]?.descriptor.digest);

  assert.deepEqual(JSON.parse(await readFile(join(dir.path, 'oci-layout'), 'utf8')), {
    imageLayoutVersion: '1.0.0',
  });
  const index = JSON.parse(await readFile(join(dir.path, 'index.json'), 'utf8'));
  assert.deepEqual(index.manifests, [
    { ...built.root, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
  ]);

  // A second build under the same tag replaces the entry; another tag adds one.
  const again = await buildImage({ layers: [] }, { layoutDir: dir.path, tag: 'v1' });
  await buildImage(IMAGE, { layoutDir: dir.path, tag: 'v2' });
  const updated = JSON.parse(await readFile(join(dir.path, 'index.json'), 'utf8'));
  assert.deepEqual(
    updated.manifests.map((m: Descriptor) => [
      m.digest,
      m.annotations?.['org.opencontainers.image.ref.name'],
    ]),
    [
      [again.manifestDigest, 'v1'],
      [built.manifestDigest, 'v2'],
    ],
  );
});

test('multi-platform index lists one manifest per platform', async (t) => {
  const dir = await tempDirFor(t);
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const built = await buildIndex(
    {
      manifests: platforms.map((platform) => ({
        platform,
        layers: [{ entries: [{ type: 'file' as const, path: 'arch', content: platform.architecture }] }],
      })),
      annotations: { 'org.example': 'multi' },
    },
    { layoutDir: dir.path },
  );
  assert.equal(built.indexDigest, built.root.digest);
  assert.equal(built.root.mediaType, MediaType.OciIndex);
  const index = await json(built, built.root);
  assert.equal(index.mediaType, MediaType.OciIndex);
  assert.deepEqual(index.annotations, { 'org.example': 'multi' });
  const entries = (index.manifests as unknown[]).map((m) => parseDescriptor(m));
  assert.deepEqual(
    entries.map((e) => e.platform),
    platforms,
  );
  assert.equal(built.manifestDigest, entries[0]?.digest);
  for (const [i, entry] of entries.entries()) {
    assert.equal(entry.digest, built.manifests[i]?.descriptor.digest);
    const manifest = await json(built, entry);
    const config = await json(built, parseDescriptor(manifest.config));
    assert.equal(config.architecture, platforms[i]?.architecture);
    assert.equal(config.variant, platforms[i]?.variant);
  }
  // The two platforms' layers differ, so their manifests must too.
  assert.notEqual(entries[0]?.digest, entries[1]?.digest);
});

test('docker format writes Docker schema 2 media types', async (t) => {
  const dir = await tempDirFor(t);
  const built = await buildIndex({ manifests: [IMAGE] }, { layoutDir: dir.path, format: 'docker' });
  assert.equal(built.root.mediaType, MediaType.DockerManifestList);
  const index = await json(built, built.root);
  assert.equal(index.mediaType, MediaType.DockerManifestList);
  const manifest = await json(built, built.manifests[0]!.descriptor);
  assert.equal(manifest.mediaType, MediaType.DockerManifest);
  assert.equal(parseDescriptor(manifest.config).mediaType, MediaType.DockerConfig);
  assert.deepEqual(
    (manifest.layers as unknown[]).map((l) => parseDescriptor(l).mediaType),
    [MediaType.DockerLayerGzip, 'application/vnd.docker.image.rootfs.diff.tar', MediaType.OciLayerZstd],
  );
});

test('an index needs a manifest', async (t) => {
  const dir = await tempDirFor(t);
  await assert.rejects(buildIndex({ manifests: [] }, { layoutDir: dir.path }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});

test('imageOfLayers: a new config over layers already in the layout, the layers shared', async (t) => {
  const dir = await tempDirFor(t);
  const first = await buildImage(IMAGE, { layoutDir: dir.path, tag: 'v1' });
  const { layers: _, ...rest } = IMAGE;
  const relabelled = await imageOfLayers(
    { ...rest, config: { ...rest.config, labels: { purpose: 'relabelled' } } },
    first.layers,
    { layoutDir: dir.path, tag: 'v2' },
  );
  assert.deepEqual(
    relabelled.layers.map((l) => l.descriptor),
    first.layers.map((l) => l.descriptor),
  );
  assert.notEqual(relabelled.manifestDigest, first.manifestDigest);
  const config = await json(relabelled, relabelled.configDescriptor);
  assert.deepEqual((config.config as { Labels: unknown }).Labels, { purpose: 'relabelled' });
  assert.deepEqual(
    (config.rootfs as { diff_ids: string[] }).diff_ids,
    first.layers.map((l) => l.diffId),
  );
  const manifest = await json(relabelled, relabelled.root);
  assert.deepEqual(
    (manifest.layers as Descriptor[]).map((l) => l.digest),
    first.layers.map((l) => l.descriptor.digest),
  );
  const index = JSON.parse(await readFile(join(dir.path, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  assert.deepEqual(
    index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]),
    [
      ['v1', first.manifestDigest],
      ['v2', relabelled.manifestDigest],
    ],
  );
});
