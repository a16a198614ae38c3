// How gRPC outcomes of cfsd calls become decisions (retry or not) and GcfsErrors with
// stable codes. The gRPC status stays reachable as the error's cause and in its details.

import { ErrorCode, GcfsError } from '@gcfs/core';
import { isServiceError, serviceErrorCode } from '@gcfs/serving';
import { status } from '@grpc/grpc-js';

export { isServiceError };

/** The calls of the ContainerFS service, as named in events, deadlines and errors. */
export type CallKind = 'authImage' | 'layerIndex' | 'readBlocks' | 'prefetchReport' | 'reportReads';

/** Calls that change nothing on the service, so that a repeat after a lost answer is harmless. */
const IDEMPOTENT: ReadonlySet<CallKind> = new Set([
  'authImage',
  'layerIndex',
  'readBlocks',
  'prefetchReport',
]);

export function isIdempotent(kind: CallKind): boolean {
  return IDEMPOTENT.has(kind);
}

/** The name of a gRPC status code (`UNAVAILABLE`), for events, metrics labels and details. */
export function statusName(code: status): string {
  return status[code] ?? `CODE_${code}`;
}

/**
 * Whether a failed call may be repeated: the service was unreachable or overloaded, or an
 * idempotent call ran out of time. Refusals (INVALID_ARGUMENT, PERMISSION_DENIED,
 * NOT_FOUND, FAILED_PRECONDITION, UNAUTHENTICATED...) would only be refused again.
 */
export function isRetryableStatus(code: status, kind: CallKind): boolean {
  switch (code) {
    case status.UNAVAILABLE:
    case status.RESOURCE_EXHAUSTED:
      return true;
    case status.DEADLINE_EXCEEDED:
      return isIdempotent(kind);
    default:
      return false;
  }
}

export function isRetryable(err: unknown, kind: CallKind): boolean {
  return isServiceError(err) && isRetryableStatus(err.code, kind);
}

const CODE_OF_STATUS: Partial<Record<status, ErrorCode>> = {
  [status.UNAVAILABLE]: ErrorCode.BackendUnavailable,
  [status.DEADLINE_EXCEEDED]: ErrorCode.BackendDeadlineExceeded,
  [status.RESOURCE_EXHAUSTED]: ErrorCode.TooManyRequests,
  [status.INVALID_ARGUMENT]: ErrorCode.InvalidArgument,
  [status.NOT_FOUND]: ErrorCode.NotFound,
  [status.PERMISSION_DENIED]: ErrorCode.Denied,
  [status.FAILED_PRECONDITION]: ErrorCode.NotStreamable,
  [status.CANCELLED]: ErrorCode.Aborted,
};

/** UNAUTHENTICATED means wrong registry credentials for AuthImage, a stale token for content calls. */
function codeOfStatus(kind: CallKind, code: status): ErrorCode {
  if (code === status.UNAUTHENTICATED) {
    return kind === 'authImage' ? ErrorCode.Unauthorized : ErrorCode.SessionExpired;
  }
  return CODE_OF_STATUS[code] ?? ErrorCode.BackendError;
}

/**
 * A GcfsError for a failed cfsd call, coded by cfsd's trailer or else by the status;
 * the ServiceError is its cause and the status is in its details.
 */
export function callError(kind: CallKind, err: unknown, attempts = 1): GcfsError {
  if (err instanceof GcfsError) return err;
  if (!isServiceError(err)) {
    return new GcfsError(ErrorCode.BackendError, `cfsd ${kind} failed`, {
      cause: err,
      details: { call: kind },
    });
  }
  const code = serviceErrorCode(err) ?? codeOfStatus(kind, err.code);
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  return new GcfsError(code, `cfsd ${kind} failed${tries}: ${statusName(err.code)}: ${err.details}`, {
    cause: err,
    details: { call: kind, grpcCode: statusName(err.code), grpcDetails: err.details, attempts },
  });
}

/** The gRPC status code behind a client error, if it came from a call. */
export function grpcStatusOf(err: unknown): status | undefined {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    if (isServiceError(current)) return current.code;
    current = current.cause;
  }
  return undefined;
}
