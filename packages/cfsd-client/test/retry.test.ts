import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { status } from '@grpc/grpc-js';
import { backoffPolicy, fixedPolicy, type RetryInfo, withRetry } from '../src/retry.js';
import { serviceError } from './service-error.js';

test('repeats retryable failures up to maxAttempts with the policy delays', async () => {
  const retries: RetryInfo[] = [];
  let attempts = 0;
  const result = await withRetry(
    'readBlocks',
    fixedPolicy(4, 1),
    async (n) => {
      attempts++;
      assert.equal(n, attempts);
      if (n < 3) throw serviceError(status.UNAVAILABLE, 'down');
      return 'ok';
    },
    (info) => retries.push(info),
  );
  assert.equal(result, 'ok');
  assert.equal(attempts, 3);
  assert.deepEqual(
    retries.map((r) => [r.call, r.attempt, r.delayMs, r.error.code]),
    [
      ['readBlocks', 1, 1, ErrorCode.BackendUnavailable],
      ['readBlocks', 2, 1, ErrorCode.BackendUnavailable],
    ],
  );
});

test('gives up after maxAttempts with the last error and the attempts made', async () => {
  let attempts = 0;
  await assert.rejects(
    withRetry(
      'authImage',
      fixedPolicy(3, 0),
      async () => {
        attempts++;
        throw serviceError(status.RESOURCE_EXHAUSTED, 'busy');
      },
      () => {},
    ),
    (err) => isGcfsError(err, ErrorCode.TooManyRequests) && err.details.attempts === 3,
  );
  assert.equal(attempts, 3);
});

test('never repeats refusals, nor timeouts of calls that are not idempotent', async () => {
  const cases: Array<[status, 'readBlocks' | 'reportReads']> = [
    [status.INVALID_ARGUMENT, 'readBlocks'],
    [status.PERMISSION_DENIED, 'readBlocks'],
    [status.NOT_FOUND, 'readBlocks'],
    [status.FAILED_PRECONDITION, 'readBlocks'],
    [status.DEADLINE_EXCEEDED, 'reportReads'],
  ];
  for (const [code, kind] of cases) {
    let attempts = 0;
    await assert.rejects(
      withRetry(
        kind,
        fixedPolicy(5, 0),
        async () => {
          attempts++;
          throw serviceError(code, 'no');
        },
        () => assert.fail('no retry expected'),
      ),
    );
    assert.equal(attempts, 1, status[code]);
  }
});

test('an abort during the delay stops the retries', async () => {
  const controller = new AbortController();
  let attempts = 0;
  await assert.rejects(
    withRetry(
      'readBlocks',
      fixedPolicy(5, 60_000),
      async () => {
        attempts++;
        throw serviceError(status.UNAVAILABLE, 'down');
      },
      () => controller.abort(),
      controller.signal,
    ),
    (err) => isGcfsError(err, ErrorCode.Aborted),
  );
  assert.equal(attempts, 1);
});

test('backoff delays grow and stay within the cap', () => {
  const policy = backoffPolicy(10, { initialMs: 100, maxMs: 1_000, jitter: 0 });
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((n) => policy.delayMs(n)),
    [100, 200, 400, 800, 1_000, 1_000],
  );
});
