// The client against a real cfsd on a real token-auth docker-registry.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { RunningCfsd } from '@gcfs/cfsd';
import { describeError, ErrorCode, isGcfsError } from '@gcfs/core';
import { containerfs } from '@gcfs/proto';
import {
  BlockFetcher,
  type CfsdClient,
  type CfsdClientEvents,
  type ImageSession,
  type ReauthEvent,
} from '../src/index.js';
import { ALICE, BOB, fixture } from './fixture.js';

/** A file's bytes through the fetcher, as the FUSE server will read them. */
async function readFile(
  fetcher: BlockFetcher,
  layer: string,
  entry: containerfs.TocEntry,
  blockSize: number,
) {
  if (entry.size === 0) return Buffer.alloc(0);
  const first = Math.floor(entry.contentOffset / blockSize);
  const last = Math.floor((entry.contentOffset + entry.size - 1) / blockSize);
  const blocks = await fetcher.getBlocks(layer, first, last - first + 1);
  const start = entry.contentOffset - first * blockSize;
  return Buffer.concat(blocks).subarray(start, start + entry.size);
}

/** Every regular file of the session's image, path → content, read through TOC and blocks. */
async function readAll(session: ImageSession, fetcher: BlockFetcher): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const layer of session.layers) {
    const { header, entries } = await session.layerIndex(layer.digest);
    assert.equal(header.layerDigest, layer.digest);
    for (const entry of entries) {
      if (entry.type !== containerfs.EntryType.ENTRY_TYPE_FILE) continue;
      files.set(entry.name, await readFile(fetcher, layer.digest, entry, header.blockSize));
    }
  }
  return files;
}

/** Every event of one kind the client emits from now on. */
function recorder<K extends keyof CfsdClientEvents>(client: CfsdClient, event: K) {
  const seen: Array<CfsdClientEvents[K][0]> = [];
  client.on<K>(event, ((e: CfsdClientEvents[K][0]) => seen.push(e)) as never);
  return seen;
}

async function servedReadBlocks(cfsd: RunningCfsd): Promise<number> {
  const metric = await cfsd.metrics.registry.getSingleMetric('cfsd_requests_total')?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels.method === 'ReadBlocks' && v.labels.code === 'OK')
    .reduce((sum, v) => sum + v.value, 0);
}

test('every file read through AuthImage, the layer index and ReadBlocks equals what was built', async (t) => {
  const fx = await fixture(t);
  await fx.start();
  const client = fx.client({ client: { name: 'test', uid: 'node-1', version: '1.0' } });
  const blockFetches = recorder(client, 'request');
  const session = await client.authImage(fx.image, ALICE, { wait: true });
  assert.equal(session.status, containerfs.ImageStatus.IMAGE_STATUS_READY);
  assert.equal(session.streamable, true);
  assert.match(session.manifestDigest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(
    session.layers.map((layer) => layer.digest),
    fx.layers,
  );
  const fetcher = new BlockFetcher({
    readBlocks: (layer, first, count) => session.readBlocks(layer, first, count),
    maxReadBlocks: 2,
  });
  const files = await readAll(session, fetcher);
  assert.deepEqual([...files.keys()].sort(), [...fx.files.keys()].sort());
  for (const [path, content] of fx.files) assert.ok(files.get(path)!.equals(content), path);
  assert.ok(blockFetches.length > 0);
});

test('wrong or missing credentials are refused without retries, and never shown', async (t) => {
  const fx = await fixture(t);
  await fx.start();
  const client = fx.client({ authImageMaxAttempts: 5 });
  const requests = recorder(client, 'request');
  const callers = [BOB, { ...ALICE, password: 'not-alice-password' }, {}];
  for (const credentials of callers) {
    await assert.rejects(client.authImage(fx.image, credentials), (err) => {
      // cfsd answers PERMISSION_DENIED or UNAUTHENTICATED, as the registry refused.
      assert.ok(
        isGcfsError(err, ErrorCode.Denied) || isGcfsError(err, ErrorCode.Unauthorized),
        describeError(err),
      );
      assert.doesNotMatch(describeError(err), /bob-cfsd-client-pw|not-alice-password/);
      return true;
    });
  }
  assert.equal(requests.length, callers.length, 'refusals are not retried');
});

test('AuthImage and ReadBlocks retry while cfsd is down, and succeed once it is back', async (t) => {
  const fx = await fixture(t);
  const client = fx.client({ authImageMaxAttempts: 1000 });
  const retries = recorder(client, 'retry');

  const authed = client.authImage(fx.image, ALICE, { wait: true });
  await once(client, 'retry');
  await fx.start({ sessionKey: Buffer.alloc(32, 7) });
  const session = await authed;
  assert.ok(retries.some((r) => r.call === 'authImage'));

  const layer = session.layers[0]!.digest;
  const [expected] = await session.readBlocks(layer, 0, 1);
  await fx.stop();
  const read = session.readBlocks(layer, 0, 1);
  await once(client, 'retry');
  // The same session key: the token stays valid, so this is a plain retry, not a re-auth.
  await fx.start({ sessionKey: Buffer.alloc(32, 7) });
  const [again] = await read;
  assert.ok(again!.data.equals(expected!.data));
  assert.ok(retries.some((r) => r.call === 'readBlocks'));
});

test('a token cfsd no longer accepts is renewed once, transparently', async (t) => {
  const fx = await fixture(t);
  await fx.start();
  const client = fx.client();
  const reauths = recorder(client, 'reauth');
  const session = await client.authImage(fx.image, ALICE, { wait: true });
  const layer = session.layers[1]!.digest;
  const before = await session.layerIndex(layer);
  const oldToken = session.token;

  // A restart without a shared key invalidates every token it issued (UNAUTHENTICATED).
  await fx.stop();
  await fx.start();
  const reads = await Promise.all(Array.from({ length: 5 }, () => session.readBlocks(layer, 0, 2)));
  assert.deepEqual(
    reauths.map((e) => [e.reason, e.ok]),
    [['unauthenticated', true]],
  );
  assert.notEqual(session.token, oldToken);
  for (const blocks of reads) assert.deepEqual(blocks, reads[0]);
  assert.deepEqual(await session.layerIndex(layer), before);
});

test('a session refreshes its token before it expires', async (t) => {
  const fx = await fixture(t);
  await fx.start({ sessionTtlMs: 1_500 });
  const client = fx.client({ authRefreshPeriodMs: 0 });
  const reauths = recorder(client, 'reauth');
  const session = await client.authImage(fx.image, ALICE, { wait: true });
  const firstExpiry = session.expiresAtUnixMs;
  const [refreshed] = (await once(client, 'reauth')) as [ReauthEvent];
  assert.deepEqual([refreshed.reason, refreshed.ok], ['refresh', true]);
  assert.ok(session.expiresAtUnixMs > firstExpiry);
  // Past the first token's expiry, content calls still work without an UNAUTHENTICATED round trip.
  while (Date.now() <= firstExpiry) await once(client, 'reauth');
  await session.readBlocks(session.layers[0]!.digest, 0, 1);
  assert.ok(reauths.every((e) => e.reason === 'refresh' && e.ok));
});

test('concurrent readers of the same blocks cause one ReadBlocks', async (t) => {
  const fx = await fixture(t);
  const cfsd = await fx.start();
  const client = fx.client();
  const requests = recorder(client, 'request');
  const session = await client.authImage(fx.image, ALICE, { wait: true });
  const fetcher = new BlockFetcher({
    readBlocks: (layer, first, count) => session.readBlocks(layer, first, count),
    maxReadBlocks: 2,
  });
  const layer = session.layers[0]!.digest;
  const servedBefore = await servedReadBlocks(cfsd);
  const readers = await Promise.all([
    ...Array.from({ length: 20 }, () => fetcher.getBlocks(layer, 0, 2)),
    ...Array.from({ length: 20 }, () => fetcher.getBlocks(layer, 1, 1)),
  ]);
  for (const blocks of readers.slice(0, 20)) assert.deepEqual(blocks, readers[0]);
  for (const blocks of readers.slice(20)) assert.deepEqual(blocks, [readers[0]![1]]);
  assert.equal(requests.filter((r) => r.call === 'readBlocks').length, 1);
  assert.equal((await servedReadBlocks(cfsd)) - servedBefore, 1);
});

test('the prefetch report is absent until a node reports reads, then lists them', async (t) => {
  const fx = await fixture(t);
  await fx.start();
  const session = await fx.client().authImage(fx.image, ALICE, { wait: true });
  assert.equal(await session.prefetchReport(), undefined);
  const layer = session.layers[0]!.digest;
  await session.reportReads([{ layerDigest: layer, path: 'bin/random', offset: 0, length: 100, atMs: 5 }]);
  const report = await session.prefetchReport();
  assert.equal(report?.manifestDigest, session.manifestDigest);
  assert.equal(report?.reports, 1);
  assert.ok(report?.ranges.some((range) => range.layerDigest === layer && range.count > 0));
});
