// What the client reports for gcfsd's metrics. Libraries emit events; only daemons log.

import type { GcfsError } from '@gcfs/core';
import type { RetryInfo } from './retry.js';
import type { CallKind } from './status.js';

/** One attempt of one call finished (`code` is the gRPC status name, `OK` on success). */
export interface RequestEvent {
  call: CallKind;
  attempt: number;
  code: string;
  ms: number;
}

/** A failed attempt will be repeated after `delayMs`. */
export type RetryEvent = RetryInfo;

/** A session asked cfsd for a new token: on schedule, or because cfsd refused the old one. */
export interface ReauthEvent {
  image: string;
  reason: 'refresh' | 'unauthenticated';
  ok: boolean;
  error?: GcfsError;
}

/** Blocks arrived from cfsd, verified and decoded: `bytes` uncompressed, `ms` for the call. */
export interface BlockFetchEvent {
  layer: string;
  first: number;
  count: number;
  bytes: number;
  ms: number;
}

export interface CfsdClientEvents {
  request: [RequestEvent];
  retry: [RetryEvent];
  reauth: [ReauthEvent];
  blockFetch: [BlockFetchEvent];
}
