import { describeError, ErrorCode, GcfsError, isErrorCode, isGcfsError } from '@gcfs/core';
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';

/** Trailer in which our services send the stable code behind a failure. */
export const ERROR_CODE_TRAILER = 'gcfs-error-code';

const STATUS_BY_CODE: Partial<Record<ErrorCode, GrpcStatus>> = {
  [ErrorCode.InvalidArgument]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.InvalidReference]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.InvalidDigest]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.Unauthorized]: GrpcStatus.UNAUTHENTICATED,
  [ErrorCode.SessionInvalid]: GrpcStatus.UNAUTHENTICATED,
  [ErrorCode.SessionExpired]: GrpcStatus.UNAUTHENTICATED,
  [ErrorCode.Denied]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.PermissionDenied]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.NotFound]: GrpcStatus.NOT_FOUND,
  [ErrorCode.AlreadyExists]: GrpcStatus.ALREADY_EXISTS,
  [ErrorCode.FailedPrecondition]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.NotStreamable]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.UnsupportedSchema]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.UnsupportedMediaType]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.PlatformNotFound]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.TooManyRequests]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.RegistryUnavailable]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.LayerUnavailable]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.LayerIndexing]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.ImageTooSmall]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.NoBackend]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.Aborted]: GrpcStatus.CANCELLED,
};

/**
 * A gRPC error for any failure: the status chosen from the error's stable code, the message
 * with credentials removed, and the code itself in the `gcfs-error-code` trailer.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  const code = isGcfsError(err) ? err.code : ErrorCode.Internal;
  metadata.set(ERROR_CODE_TRAILER, code);
  return {
    code: STATUS_BY_CODE[code] ?? GrpcStatus.INTERNAL,
    details: describeError(err),
    metadata,
  };
}

/** The stable code a service of ours sent with a failed call, when it sent one we know. */
export function serviceErrorCode(err: ServiceError): ErrorCode | undefined {
  const value = err.metadata?.get(ERROR_CODE_TRAILER)[0];
  return isErrorCode(value) ? value : undefined;
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'number' && 'details' in err;
}

/**
 * grpc-js's refusal of a message over a size limit (a Unix-socket server's, see
 * createUnixSocketServer): RESOURCE_EXHAUSTED with this text, sent before any handler of
 * ours runs, so without our trailer. The answers of those node-local APIs are small, so it
 * is the request that was too large.
 */
const TOO_LARGE = /message larger than max/;

/**
 * A GcfsError for a failed call: the service's own code when it sent one, InvalidArgument
 * for a request larger than the service accepts, else the code `fallback` gives the status;
 * the ServiceError is the cause.
 */
export function fromServiceError(
  err: ServiceError,
  what: string,
  fallback: (status: GrpcStatus) => ErrorCode,
): GcfsError {
  if (err.code === GrpcStatus.RESOURCE_EXHAUSTED && TOO_LARGE.test(err.details)) {
    return new GcfsError(
      ErrorCode.InvalidArgument,
      `${what}: the request is larger than the daemon accepts (RESOURCE_EXHAUSTED: ${err.details})`,
      { cause: err, hint: 'shorten the names in the request' },
    );
  }
  const code = serviceErrorCode(err) ?? fallback(err.code);
  return new GcfsError(code, `${what}: ${GrpcStatus[err.code]}: ${err.details || err.message}`, {
    cause: err,
  });
}

/**
 * grpc-js's text for a peer it cannot connect to ("No connection established. Last error:
 * Error: connect ENOENT /run/x.sock. Resolution note: ") cut to the error itself
 * ("connect ENOENT /run/x.sock"), for status pages; other text is returned as is.
 */
export function connectFailure(text: string): string {
  const marker = 'Last error: ';
  const at = text.indexOf(marker);
  if (at < 0) return text;
  let rest = text.slice(at + marker.length);
  if (rest.startsWith('Error: ')) rest = rest.slice('Error: '.length);
  const end = rest.indexOf('. Resolution note');
  return end < 0 ? rest : rest.slice(0, end);
}
