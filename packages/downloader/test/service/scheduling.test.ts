import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode } from '@gcfs/core';
import type { Entry } from '@gcfs/image-builder';
import type { DownloaderClient } from '../../src/index.js';
import { privateRegistry, pushBuilt, requestFor, runDownloader } from './harness.js';

const layerOf = (name: string, size: number): { compression: 'gzip'; entries: Entry[] } => ({
  compression: 'gzip',
  entries: [{ type: 'file', path: `${name}.bin`, content: { size, seed: name } }],
});

async function waitForState(client: DownloaderClient, layerId: string, state: string): Promise<void> {
  for (let i = 0; ; i++) {
    const current = await client.state(layerId);
    if (current.state === state && (state !== 'downloading' || current.bytes > 0)) return;
    assert.ok(i < 3000, `${layerId} never became ${state} (is ${current.state})`);
    await delay(5);
  }
}

test('with --max_layer_downloads=2, five layers asked at once never run more than two at a time', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/five', {
    layers: ['a', 'b', 'c', 'd', 'e'].map((name) => layerOf(name, 3_000_000)),
  });
  const { client, cacheDir, running } = await runDownloader(t, { maxConcurrentDownloads: 2 });
  let current = 0;
  let most = 0;
  running.downloader.on('started', () => {
    current += 1;
    most = Math.max(most, current);
  });
  running.downloader.on('finished', () => {
    current -= 1;
  });
  let polling = true;
  let mostPolled = 0;
  let queuedSeen = 0;
  const poller = (async () => {
    while (polling) {
      const state = await client.state(pushed.layers[4]!.digest);
      mostPolled = Math.max(mostPolled, state.inFlight);
      queuedSeen = Math.max(queuedSeen, state.queued);
    }
  })();
  const outcomes = await Promise.all(
    pushed.layers.map((layer) => client.download(requestFor(cacheDir, pushed.image, layer))),
  );
  polling = false;
  await poller;
  assert.ok(outcomes.every((outcome) => outcome.succeeded));
  assert.equal(most, 2, 'two downloads ran side by side, never more');
  assert.ok(mostPolled <= 2, `GetLayerState saw ${mostPolled} in flight`);
  assert.ok(queuedSeen <= 3);
  assert.equal((await readdir(cacheDir)).length, 5);
});

test('the same layer asked for twice at once is fetched from the registry once, both callers answered', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/dedup', { layers: [layerOf('once', 4_000_000)] });
  const layer = pushed.layers[0]!;
  const { client, cacheDir } = await runDownloader(t);
  const request = requestFor(cacheDir, pushed.image, layer);
  const [first, second] = await Promise.all([client.download(request), client.download(request)]);
  assert.equal(first.succeeded, true);
  assert.deepEqual(second, first, 'both callers get the one outcome');
  assert.equal(first.alreadyPresent, false);
  const fetches = (await registry.logs())
    .split('\n')
    .filter((line) => line.includes(`"GET /v2/private/dedup/blobs/${layer.digest} `) && / 200 /.test(line));
  assert.equal(fetches.length, 1, fetches.join('\n'));
});

test('cancel aborts a queued and a running download: callers get ERR_ABORTED, nothing is left behind', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/cancel', {
    layers: [layerOf('big', 64 << 20), layerOf('queued', 1_000_000)],
  });
  const [big, queued] = pushed.layers as [(typeof pushed.layers)[0], (typeof pushed.layers)[0]];
  const { client, cacheDir } = await runDownloader(t, { maxConcurrentDownloads: 1 });
  const running = client.download(requestFor(cacheDir, pushed.image, big));
  await waitForState(client, big.digest, 'downloading');
  const waiting = client.download(requestFor(cacheDir, pushed.image, queued));
  await waitForState(client, queued.digest, 'queued');

  assert.equal(await client.cancel(queued.digest), true);
  const dropped = await waiting;
  assert.equal(dropped.succeeded, false);
  assert.equal(dropped.errorCode, ErrorCode.Aborted);
  assert.equal(dropped.bytes, 0);

  const cancelled = await client.cancel(big.digest);
  const outcome = await running;
  // A fast machine may finish the 64 MiB before the cancel arrives: then there was nothing to cancel.
  assert.equal(outcome.succeeded, !cancelled);
  if (cancelled) {
    assert.equal(outcome.errorCode, ErrorCode.Aborted);
    assert.equal((await client.state(big.digest)).state, 'failed');
    assert.deepEqual(await readdir(cacheDir), []);
  }
  assert.equal(await client.cancel(queued.digest), false, 'nothing left to cancel');

  // A cancelled layer can be asked for again.
  const retry = await client.download(requestFor(cacheDir, pushed.image, queued));
  assert.equal(retry.succeeded, true);
});

test('stopping the service aborts the downloads under way, removes their untar dirs and the socket', async (t) => {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, 'private/stop', { layers: [layerOf('stop', 64 << 20)] });
  const layer = pushed.layers[0]!;
  const { client, cacheDir, running, socketPath } = await runDownloader(t);
  const download = client.download(requestFor(cacheDir, pushed.image, layer));
  await waitForState(client, layer.digest, 'downloading');
  await running.stop();
  const outcome = await download.then(
    (answer) => answer,
    (err: Error) => err,
  );
  // Either the abort reached the caller, or the connection closed before it could.
  if (!(outcome instanceof Error)) {
    assert.equal(outcome.succeeded, false);
    assert.equal(outcome.errorCode, ErrorCode.Aborted);
  }
  assert.deepEqual(await readdir(cacheDir), []);
  assert.deepEqual(await readdir(socketPath.slice(0, socketPath.lastIndexOf('/'))), []);
});
