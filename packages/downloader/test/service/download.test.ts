import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, gcfsVersion, isGcfsError, Limits, UNTAR_DIR_PREFIX } from '@gcfs/core';
import { EVERY_ENTRY_KIND } from '@gcfs/image-builder';
import { diffTrees, snapshotTree } from '@gcfs/testkit';
import { describeDownloadRequest } from '../../src/index.js';
import { ALICE, privateRegistry, pushBuilt, referenceTree, requestFor, runDownloader } from './harness.js';

const SMALL = (name: string) => [
  { type: 'dir' as const, path: name, mode: 0o755 },
  { type: 'file' as const, path: `${name}/data`, content: { size: 300_000, seed: name } },
];

test('a multi-layer image downloads through the gRPC client: each layer dir equals GNU tar, no untar dir left', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/multi', {
    layers: [
      { compression: 'gzip', entries: EVERY_ENTRY_KIND },
      {
        compression: 'zstd',
        longNames: 'gnu',
        entries: [...SMALL('zstd'), { type: 'dir', path: 'bin' }, { type: 'whiteout', path: 'bin/sgid' }],
      },
      { compression: 'none', entries: SMALL('plain') },
    ],
  });
  const { client, cacheDir, running } = await runDownloader(t, { metricsListen: '127.0.0.1:0' });
  const outcomes = await Promise.all(
    pushed.layers.map((layer) => client.download(requestFor(cacheDir, pushed.image, layer))),
  );
  for (const [i, outcome] of outcomes.entries()) {
    const layer = pushed.layers[i]!;
    assert.deepEqual(
      { ...outcome, seconds: 0 },
      {
        succeeded: true,
        hasMismatchedHash: false,
        errorReason: '',
        errorCode: '',
        bytes: layer.size,
        seconds: 0,
        alreadyPresent: false,
      },
    );
    const published = await snapshotTree(requestFor(cacheDir, pushed.image, layer).layerDir);
    assert.deepEqual(diffTrees(published, await referenceTree(t, layer)), [], `layer ${i}`);
    const state = await client.state(layer.digest);
    assert.equal(state.state, 'done');
  }
  assert.deepEqual(
    (await readdir(cacheDir)).filter((name) => name.startsWith(UNTAR_DIR_PREFIX)),
    [],
  );
  assert.equal((await readdir(cacheDir)).length, 3);

  // Asked again: answered from the cache, nothing fetched.
  const again = await client.download(requestFor(cacheDir, pushed.image, pushed.layers[0]!));
  assert.equal(again.succeeded, true);
  assert.equal(again.alreadyPresent, true);
  assert.equal(again.bytes, 0);
  const scraped = await fetch(`http://${running.metricsAddress}/metrics`);
  assert.equal(scraped.status, 200);
  const metrics = await scraped.text();
  assert.match(metrics, /gcfsd_downloader_layers_total\{result="downloaded"\} 3/);
  assert.match(metrics, /gcfsd_downloader_layers_total\{result="present"\} 1/);
  assert.match(
    metrics,
    new RegExp(`gcfsd_downloader_bytes_total ${pushed.layers.reduce((n, l) => n + l.size, 0)}`),
  );
  assert.match(metrics, /gcfsd_downloader_in_flight 0/);
  const { version, commit } = gcfsVersion();
  assert.ok(metrics.includes(`gcfs_build_info{version="${version}",commit="${commit}"} 1`), metrics);
});

test('a tampered blob answers hasMismatchedHash, publishes nothing and leaves no untar dir', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/tampered', {
    layers: [
      // Uncompressed: the tar still parses, only the digest at the end can tell.
      { compression: 'none', entries: SMALL('plain') },
      // gzip: the flipped byte breaks decompression long before the end of the blob.
      { compression: 'gzip', entries: SMALL('gz') },
    ],
  });
  for (const layer of pushed.layers) {
    const path = registry.blobDataPath(layer.digest);
    const data = await readFile(path);
    const at = Math.floor(data.length / 2);
    data[at] = data[at]! ^ 0xff;
    await writeFile(path, data);
  }
  const { client, cacheDir, running } = await runDownloader(t);
  for (const layer of pushed.layers) {
    const outcome = await client.download(requestFor(cacheDir, pushed.image, layer));
    assert.equal(outcome.succeeded, false);
    assert.equal(outcome.hasMismatchedHash, true, outcome.errorReason);
    assert.equal(outcome.errorCode, ErrorCode.DigestMismatch);
    const state = await client.state(layer.digest);
    assert.equal(state.state, 'failed');
    assert.equal(state.hasMismatchedHash, true);
  }
  assert.deepEqual(await readdir(cacheDir), []);
  assert.match(
    await running.metrics.registry.metrics(),
    /gcfsd_downloader_failures_total\{reason="ERR_DIGEST_MISMATCH"\} 2/,
  );
});

test('wrong credentials fail the download with the registry refusal, never the password', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/auth', { layers: [{ entries: SMALL('a') }] });
  const { client, cacheDir } = await runDownloader(t);
  const wrong = { username: 'alice', password: 'Wr0ngPassw0rd!' };
  const outcome = await client.download(requestFor(cacheDir, pushed.image, pushed.layers[0]!, wrong));
  assert.equal(outcome.succeeded, false);
  assert.equal(outcome.hasMismatchedHash, false);
  assert.equal(outcome.errorCode, ErrorCode.Unauthorized, outcome.errorReason);
  assert.ok(!outcome.errorReason.includes(wrong.password));
  const { pullSecret: _, ...anonymousRequest } = requestFor(cacheDir, pushed.image, pushed.layers[0]!);
  const anonymous = await client.download(anonymousRequest);
  assert.equal(anonymous.succeeded, false);
  assert.deepEqual(await readdir(cacheDir), []);
  const text = describeDownloadRequest(requestFor(cacheDir, pushed.image, pushed.layers[0]!, ALICE));
  assert.match(text, /pull_secret:"\(redacted\)"/);
  assert.ok(!text.includes(ALICE.password));
});

test('requests naming other paths than the cache dirs of their digest are refused, nothing written', async (t) => {
  const { client, cacheDir, running } = await runDownloader(t);
  const digest = `sha256:${'ab'.repeat(32)}`;
  const good = requestFor(cacheDir, '127.0.0.1:1/x/y:v1', { digest, mediaType: '', size: 1 });
  const bad: Array<[string, Partial<typeof good>]> = [
    ['layer dir of another digest', { layerDir: join(cacheDir, `sha256=${'cd'.repeat(32)}`) }],
    ['layer dir outside the cache', { layerDir: `/tmp/sha256=${'ab'.repeat(32)}` }],
    ['layer dir beside the cache', { layerDir: join(cacheDir, '..', `sha256=${'ab'.repeat(32)}`) }],
    ['relative layer dir', { layerDir: `sha256=${'ab'.repeat(32)}` }],
    ['traversal in the layer dir', { layerDir: `${cacheDir}/x/../../etc` }],
    ['untar dir outside the cache', { untarDir: `/etc/untar_${digest}` }],
    ['untar dir named like the layer dir', { untarDir: good.layerDir }],
    ['empty untar dir', { untarDir: '' }],
    ['malformed digest', { layerId: 'sha256:../../etc' }],
    ['unknown algorithm', { layerId: `md5:${'ab'.repeat(16)}` }],
  ];
  for (const [what, change] of bad) {
    await assert.rejects(
      client.download({ ...good, ...change }),
      (err) =>
        isGcfsError(err) && [ErrorCode.InvalidArgument, ErrorCode.InvalidDigest].includes(err.code as never),
      what,
    );
  }
  await assert.rejects(client.state('nope'), (err) => isGcfsError(err, ErrorCode.InvalidDigest));
  assert.deepEqual(await readdir(cacheDir), []);
  assert.equal(running.downloader.inFlight + running.downloader.queued, 0);
});

test('a request past the socket message limit is ERR_INVALID_ARGUMENT saying it is too large; the next is answered', async (t) => {
  const { client, cacheDir } = await runDownloader(t);
  const digest = `sha256:${'ab'.repeat(32)}`;
  const huge = requestFor(cacheDir, `127.0.0.1:1/${'a'.repeat(Limits.socketMessageBytes)}:v1`, {
    digest,
    mediaType: '',
    size: 1,
  });
  await assert.rejects(client.download(huge), (err) => {
    assert.ok(isGcfsError(err, ErrorCode.InvalidArgument), String(err));
    assert.match(err.message, /the request is larger than the daemon accepts \(RESOURCE_EXHAUSTED: /);
    return true;
  });
  assert.equal((await client.state(digest)).state, 'absent');
});

test('the socket is 0600 in a 0700 dir created for it', async (t) => {
  const { socketPath } = await runDownloader(t);
  assert.equal((await stat(socketPath)).mode & 0o777, 0o600);
  assert.equal((await stat(join(socketPath, '..'))).mode & 0o777, 0o700);
});

test('a layer too deep for the file system fails with a bounded reason, and the downloader still serves', async (t) => {
  // 2,500 nested directories: a 5 KB path, past PATH_MAX, which cfsd indexes without complaint.
  const depth = 2_500;
  const entries = Array.from({ length: depth }, (_, i) => ({
    type: 'dir' as const,
    path: Array.from({ length: i + 1 }, () => 'd').join('/'),
    mode: 0o755,
  }));
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/deep', {
    layers: [
      { compression: 'gzip', longNames: 'pax', entries },
      { compression: 'gzip', entries: SMALL('fine') },
    ],
  });
  const { client, cacheDir } = await runDownloader(t);
  const outcome = await client.download(requestFor(cacheDir, pushed.image, pushed.layers[0]!));
  assert.equal(outcome.succeeded, false);
  assert.equal(outcome.errorCode, ErrorCode.LayerWrite, outcome.errorReason);
  assert.match(outcome.errorReason, /ENAMETOOLONG/);
  assert.ok(outcome.errorReason.length <= 2_100, `${outcome.errorReason.length} characters`);
  assert.match(outcome.errorReason, /… \(\d+ characters\)/);
  const fine = await client.download(requestFor(cacheDir, pushed.image, pushed.layers[1]!));
  assert.equal(fine.succeeded, true);
});
