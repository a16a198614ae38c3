import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestOf, ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { manifestKind, parseImageIndex, parseImageManifest, selectPlatform } from '../src/index.js';

const desc = (mediaType: string, text: string, extra: object = {}) => ({
  mediaType,
  digest: digestOf(text),
  size: text.length,
  ...extra,
});

test('manifest kinds: schema 1 and unknown types are refused with their own codes', () => {
  assert.equal(manifestKind(MediaType.OciManifest, 'x'), 'manifest');
  assert.equal(manifestKind(MediaType.DockerManifestList, 'x'), 'index');
  assert.throws(
    () => manifestKind(MediaType.DockerSchema1Signed, 'x'),
    (err) => isGcfsError(err, ErrorCode.UnsupportedSchema) && /re-push/.test(err.hint ?? ''),
  );
  assert.throws(
    () => manifestKind('application/vnd.cncf.helm.chart.content.v1.tar+gzip', 'x'),
    (err) => isGcfsError(err, ErrorCode.UnsupportedMediaType),
  );
});

test('a manifest whose layer is not a tar layer is refused, naming the layer', () => {
  const body = (layerType: string) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: desc(MediaType.OciConfig, '{}'),
        layers: [desc(MediaType.OciLayerGzip, 'a'), desc(layerType, 'b')],
      }),
    );
  const ok = parseImageManifest(body(MediaType.OciLayerZstd), MediaType.OciManifest, 'img');
  assert.equal(ok.layers.length, 2);
  assert.throws(
    () => parseImageManifest(body('application/vnd.example.weird'), MediaType.OciManifest, 'img'),
    (err) => isGcfsError(err, ErrorCode.UnsupportedMediaType) && err.message.includes('layer 1'),
  );
  assert.throws(
    () => parseImageManifest(body(MediaType.OciLayer), MediaType.DockerManifest, 'img'),
    (err) => isGcfsError(err, ErrorCode.RegistryProtocol),
    'document media type disagrees with Content-Type',
  );
});

test('platform selection from an index, with a clear error listing what is there', () => {
  const index = parseImageIndex(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          desc(MediaType.OciManifest, 'arm', {
            platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
          }),
          desc(MediaType.OciManifest, 'arm64', { platform: { os: 'linux', architecture: 'arm64' } }),
          desc(MediaType.OciManifest, 'amd64', { platform: { os: 'linux', architecture: 'amd64' } }),
          desc(MediaType.OciManifest, 'att', { platform: { os: 'unknown', architecture: 'unknown' } }),
        ],
      }),
    ),
    MediaType.OciIndex,
    'img',
  );
  assert.equal(
    selectPlatform(index, { os: 'linux', architecture: 'amd64' }, 'img').digest,
    digestOf('amd64'),
  );
  assert.equal(
    selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'img').digest,
    digestOf('arm64'),
  );
  assert.throws(
    () => selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }, 'img'),
    (err) =>
      isGcfsError(err, ErrorCode.PlatformNotFound) &&
      /linux\/arm\/v7, linux\/arm64, linux\/amd64, unknown\/unknown/.test(err.hint ?? ''),
  );
});
