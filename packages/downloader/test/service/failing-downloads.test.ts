// Failing downloads are answers, never a crash: each request below once killed the process
// with an unhandled 'error' event (issue 11).

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { ErrorCode } from '@gcfs/core';
import { ALICE, privateRegistry, pushBuilt, requestFor, runDownloader } from './harness.js';

const MISSING = `sha256:${'c3'.repeat(32)}`;

test('a missing blob of a media type we cannot read, each alone, a wrong size and a blob that is not what its media type says: each answers its error, the downloader still serves', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/failing', {
    layers: [
      {
        compression: 'gzip',
        entries: [{ type: 'file', path: 'a', content: { size: 3_000_000, seed: 'a' } }],
      },
    ],
  });
  const { client, cacheDir } = await runDownloader(t);
  const layer = pushed.layers[0]!;
  const hostile = `${registry.host}/private/abs-path:1`;
  const cases = [
    {
      ...requestFor(cacheDir, hostile, { digest: MISSING, mediaType: 'text/html', size: 100 }),
      want: ErrorCode.UnsupportedMediaType,
    },
    // The blob exists and streams while the media type is refused.
    {
      ...requestFor(cacheDir, pushed.image, { ...layer, mediaType: 'text/html' }),
      want: ErrorCode.UnsupportedMediaType,
    },
    {
      ...requestFor(cacheDir, hostile, { digest: MISSING, mediaType: layer.mediaType, size: 100 }),
      want: ErrorCode.NotFound,
    },
    {
      ...requestFor(cacheDir, pushed.image, { ...layer, size: layer.size + 1 }),
      want: ErrorCode.SizeMismatch,
    },
    // gzip bytes read as a tar: the untar fails early while the blob still streams.
    {
      ...requestFor(cacheDir, pushed.image, {
        ...layer,
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
      }),
      want: ErrorCode.BadLayer,
    },
  ];
  // One after the other: requests for the same layer at once would share one outcome.
  for (const { want, ...request } of cases) {
    const outcome = await client.download(request);
    assert.equal(outcome.succeeded, false);
    assert.equal(outcome.errorCode, want, outcome.errorReason);
  }
  const valid = await client.download(requestFor(cacheDir, pushed.image, layer, ALICE));
  assert.equal(valid.succeeded, true, valid.errorReason);
  assert.deepEqual(
    (await readdir(cacheDir)).filter((name) => name.startsWith('untar_')),
    [],
  );
});
