import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError, ErrorCode, registerSecret } from '@gcfs/core';
import { status } from '@grpc/grpc-js';
import { callError, grpcStatusOf, isRetryableStatus } from '../src/status.js';
import { serviceError } from './service-error.js';

test('retries unreachable and overloaded calls, and timeouts of idempotent calls only', () => {
  for (const kind of ['authImage', 'layerIndex', 'readBlocks', 'prefetchReport', 'reportReads'] as const) {
    assert.equal(isRetryableStatus(status.UNAVAILABLE, kind), true, kind);
    assert.equal(isRetryableStatus(status.RESOURCE_EXHAUSTED, kind), true, kind);
    assert.equal(isRetryableStatus(status.DEADLINE_EXCEEDED, kind), kind !== 'reportReads', kind);
    for (const refusal of [
      status.INVALID_ARGUMENT,
      status.PERMISSION_DENIED,
      status.NOT_FOUND,
      status.FAILED_PRECONDITION,
      status.UNAUTHENTICATED,
      status.CANCELLED,
      status.INTERNAL,
    ]) {
      assert.equal(isRetryableStatus(refusal, kind), false, `${kind} ${status[refusal]}`);
    }
  }
});

test('maps statuses to stable codes, UNAUTHENTICATED by call kind', () => {
  const cases: Array<[status, 'authImage' | 'readBlocks', string]> = [
    [status.UNAVAILABLE, 'readBlocks', ErrorCode.BackendUnavailable],
    [status.DEADLINE_EXCEEDED, 'readBlocks', ErrorCode.BackendDeadlineExceeded],
    [status.RESOURCE_EXHAUSTED, 'readBlocks', ErrorCode.TooManyRequests],
    [status.PERMISSION_DENIED, 'authImage', ErrorCode.Denied],
    [status.NOT_FOUND, 'authImage', ErrorCode.NotFound],
    [status.FAILED_PRECONDITION, 'readBlocks', ErrorCode.NotStreamable],
    [status.UNAUTHENTICATED, 'authImage', ErrorCode.Unauthorized],
    [status.UNAUTHENTICATED, 'readBlocks', ErrorCode.SessionExpired],
    [status.INTERNAL, 'readBlocks', ErrorCode.BackendError],
  ];
  for (const [code, kind, expected] of cases) {
    const err = callError(kind, serviceError(code, 'no'), 3);
    assert.equal(err.code, expected, `${kind} ${status[code]}`);
    assert.equal(err.details.grpcCode, status[code]);
    assert.equal(err.details.attempts, 3);
    assert.equal(grpcStatusOf(err), code);
  }
});

test("prefers cfsd's own code from the trailer, ignoring codes it does not know", () => {
  const platform = callError(
    'authImage',
    serviceError(status.FAILED_PRECONDITION, 'x', 'ERR_PLATFORM_NOT_FOUND'),
  );
  assert.equal(platform.code, ErrorCode.PlatformNotFound);
  const invalid = callError('readBlocks', serviceError(status.UNAUTHENTICATED, 'x', 'ERR_SESSION_INVALID'));
  assert.equal(invalid.code, ErrorCode.SessionInvalid);
  const unknown = callError('readBlocks', serviceError(status.NOT_FOUND, 'x', 'ERR_FROM_THE_FUTURE'));
  assert.equal(unknown.code, ErrorCode.NotFound);
});

test('errors never show registered credentials, even in the service message', () => {
  registerSecret('hunter2-registry-password');
  const err = callError(
    'authImage',
    serviceError(status.PERMISSION_DENIED, 'refused hunter2-registry-password'),
  );
  assert.doesNotMatch(err.message, /hunter2/);
  assert.doesNotMatch(describeError(err), /hunter2/);
});

test('non-gRPC failures become backend errors with their cause', () => {
  const cause = new TypeError('boom');
  const err = callError('readBlocks', cause);
  assert.equal(err.code, ErrorCode.BackendError);
  assert.equal(err.cause, cause);
  assert.equal(grpcStatusOf(err), undefined);
});
