import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { CfsdClient, clientOptionsFromFlags, type RequestEvent, type RetryEvent } from '../src/index.js';

test('AuthImage to an unreachable cfsd makes exactly authImageMaxAttempts attempts at the interval', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-client-');
  const client = new CfsdClient({
    address: `unix:${dir.path}/nothing.sock`,
    authImageMaxAttempts: 3,
    authImageRetryIntervalMs: 20,
  });
  t.after(() => client.close());
  const requests: RequestEvent[] = [];
  const retries: RetryEvent[] = [];
  client.on('request', (e) => requests.push(e));
  client.on('retry', (e) => retries.push(e));
  await assert.rejects(
    client.authImage('example.com/app:v1', { username: 'u', password: 'secret-password' }),
    (err) => isGcfsError(err, ErrorCode.BackendUnavailable) && err.details.attempts === 3,
  );
  assert.deepEqual(
    requests.map((r) => [r.call, r.attempt, r.code]),
    [
      ['authImage', 1, 'UNAVAILABLE'],
      ['authImage', 2, 'UNAVAILABLE'],
      ['authImage', 3, 'UNAVAILABLE'],
    ],
  );
  assert.deepEqual(
    retries.map((r) => [r.attempt, r.delayMs]),
    [
      [1, 20],
      [2, 20],
    ],
  );
});

test('a closed client refuses new sessions', async () => {
  const client = new CfsdClient({ address: '127.0.0.1:1' });
  client.close();
  await assert.rejects(client.authImage('example.com/app:v1'), (err) => isGcfsError(err, ErrorCode.Aborted));
});

test("gcfsd's flags map onto the client options; an empty --addr is a configuration error", () => {
  const flags = {
    addr: 'unix:/run/cfsd.sock',
    auth_refresh_period: 60_000,
    authimage_max_attempts: 4,
    authimage_retry_interval: 250,
    client_name: 'gke',
    client_uid: 'node-7',
    client_version: '1.2',
  };
  assert.deepEqual(clientOptionsFromFlags(flags), {
    address: 'unix:/run/cfsd.sock',
    client: { name: 'gke', uid: 'node-7', version: '1.2' },
    authImageMaxAttempts: 4,
    authImageRetryIntervalMs: 250,
    authRefreshPeriodMs: 60_000,
  });
  assert.throws(
    () => clientOptionsFromFlags({ ...flags, addr: '' }),
    (err) => isGcfsError(err, ErrorCode.Config),
  );
});
