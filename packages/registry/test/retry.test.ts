import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import { digestOf, ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { type AfterHook, disposeAfter } from '@gcfs/testkit';
import type { RetryEvent } from '../src/index.js';
import { clientFor } from './fixtures.js';

const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 },
    layers: [],
  }),
);

/** A server that misbehaves as `plan` says for the first requests, then serves MANIFEST. */
async function flakyServer(
  hook: AfterHook,
  plan: Array<(req: IncomingMessage, res: ServerResponse) => void>,
): Promise<{ host: string; requests: () => number }> {
  let count = 0;
  const server = createServer((req, res) => {
    const step = plan[count++];
    if (step) return step(req, res);
    res.writeHead(200, {
      'content-type': MediaType.OciManifest,
      'docker-content-digest': digestOf(MANIFEST),
    });
    res.end(MANIFEST);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  disposeAfter(hook, server, (s) => {
    s.closeAllConnections();
    return new Promise((resolve) => s.close(resolve));
  });
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { host: `127.0.0.1:${address.port}`, requests: () => count };
}

const status =
  (code: number, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `status ${code}` }] }));
  };
const reset = (req: IncomingMessage) => req.socket.destroy();

test('503, 429 (Retry-After) and connection resets are retried with backoff', async (t) => {
  const server = await flakyServer(t, [status(503), reset, status(429, { 'retry-after': '0' }), status(502)]);
  const client = clientFor(t, { maxAttempts: 5 });
  const retries: RetryEvent[] = [];
  client.on('retry', (e) => retries.push(e));
  const manifest = await client.getManifest(`${server.host}/flaky/app:v1`);
  assert.equal(manifest.digest, digestOf(MANIFEST));
  assert.equal(server.requests(), 5);
  assert.deepEqual(
    retries.map((r) => r.attempt),
    [1, 2, 3, 4],
  );
  assert.equal(retries[2]?.delayMs, 0, 'Retry-After is honoured');
  assert.match(retries[1]?.reason ?? '', /ECONNRESET|other side closed|socket/i);
});

test('retries are bounded: the last status decides the error', async (t) => {
  const always = (step: ReturnType<typeof status>) => Array.from({ length: 20 }, () => step);
  const unavailable = await flakyServer(t, always(status(503)));
  const client = clientFor(t, { maxAttempts: 3 });
  await assert.rejects(
    client.getManifest(`${unavailable.host}/flaky/app:v1`),
    (err) => isGcfsError(err, ErrorCode.RegistryUnavailable) && /status 503/.test(err.message),
  );
  assert.equal(unavailable.requests(), 3);
  const busy = await flakyServer(t, always(status(429, { 'retry-after': '0' })));
  await assert.rejects(client.getManifest(`${busy.host}/flaky/app:v1`), (err) =>
    isGcfsError(err, ErrorCode.TooManyRequests),
  );
  assert.equal(busy.requests(), 3);
  const resets = await flakyServer(
    t,
    Array.from({ length: 20 }, () => reset),
  );
  await assert.rejects(client.getManifest(`${resets.host}/flaky/app:v1`), (err) =>
    isGcfsError(err, ErrorCode.RegistryUnavailable),
  );
  assert.equal(resets.requests(), 3);
});
