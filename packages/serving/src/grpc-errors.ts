import { describeError, ErrorCode, isGcfsError } from '@gcfs/core';
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';

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
  [ErrorCode.NotStreamable]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.UnsupportedSchema]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.UnsupportedMediaType]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.PlatformNotFound]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.TooManyRequests]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.RegistryUnavailable]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.Aborted]: GrpcStatus.CANCELLED,
};

/**
 * A gRPC error for any failure: the status chosen from the error's stable code, the message
 * with credentials removed, and the code itself in the `gcfs-error-code` trailer.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  const code = isGcfsError(err) ? err.code : ErrorCode.Internal;
  metadata.set('gcfs-error-code', code);
  return {
    code: STATUS_BY_CODE[code] ?? GrpcStatus.INTERNAL,
    details: describeError(err),
    metadata,
  };
}
