// Conversions between the downloader's types and its gRPC messages, in both directions, so
// that the service and the client agree by construction.

import { describeError, ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import { downloader as pb } from '@gcfs/proto';
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { LayerStateKind } from './types.js';

const { LayerStateKind: Kind } = pb;
const KINDS: ReadonlyArray<[LayerStateKind, pb.LayerStateKind]> = [
  ['absent', Kind.LAYER_STATE_KIND_ABSENT],
  ['queued', Kind.LAYER_STATE_KIND_QUEUED],
  ['downloading', Kind.LAYER_STATE_KIND_DOWNLOADING],
  ['done', Kind.LAYER_STATE_KIND_DONE],
  ['failed', Kind.LAYER_STATE_KIND_FAILED],
];

export function stateToWire(state: LayerStateKind): pb.LayerStateKind {
  return KINDS.find(([kind]) => kind === state)![1];
}

export function stateFromWire(state: pb.LayerStateKind): LayerStateKind {
  const found = KINDS.find(([, wire]) => wire === state);
  if (!found)
    throw new GcfsError(ErrorCode.BackendError, `the downloader answered an unknown layer state ${state}`);
  return found[0];
}

const ERROR_CODE_KEY = 'gcfs-error-code';
const BAD_REQUEST: ReadonlySet<string> = new Set([ErrorCode.InvalidArgument, ErrorCode.InvalidDigest]);

/** A gRPC error for a refused call: INVALID_ARGUMENT for bad requests, the code in a trailer. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const code = isGcfsError(err) ? err.code : ErrorCode.Internal;
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, code);
  return {
    code: BAD_REQUEST.has(code) ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL,
    details: describeError(err),
    metadata,
  };
}

/** A GcfsError for a failed call: the service's own code when it sent one. */
export function fromServiceError(err: ServiceError, what: string): GcfsError {
  const sent = err.metadata?.get(ERROR_CODE_KEY)[0];
  const known = Object.values(ErrorCode) as string[];
  let code: ErrorCode;
  if (typeof sent === 'string' && known.includes(sent)) code = sent as ErrorCode;
  else if (err.code === GrpcStatus.UNAVAILABLE) code = ErrorCode.DownloaderUnavailable;
  else if (err.code === GrpcStatus.DEADLINE_EXCEEDED || err.code === GrpcStatus.CANCELLED)
    code = ErrorCode.Aborted;
  else code = ErrorCode.BackendError;
  return new GcfsError(code, `${what}: ${err.details || err.message}`, { cause: err });
}
