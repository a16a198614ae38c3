// Conversions between the downloader's types and its gRPC messages, in both directions, so
// that the service and the client agree by construction.

import { ErrorCode, GcfsError } from '@gcfs/core';
import { downloader as pb } from '@gcfs/proto';
import { fromServiceError } from '@gcfs/serving';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
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

/** A GcfsError for a failed call to the downloader: its own code when it sent one. */
export function fromDownloaderError(err: ServiceError, what: string): GcfsError {
  return fromServiceError(err, what, (code) => {
    if (code === GrpcStatus.UNAVAILABLE) return ErrorCode.DownloaderUnavailable;
    if (code === GrpcStatus.DEADLINE_EXCEEDED || code === GrpcStatus.CANCELLED) return ErrorCode.Aborted;
    return ErrorCode.BackendError;
  });
}
