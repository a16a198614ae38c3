// What the file system reports for gcfsd's metrics. Libraries emit events; only daemons log.

import type { BlockFetchEvent } from '@gcfs/cfsd-client';
import type { GcfsError } from '@gcfs/core';

/** A FUSE read of a layer file was answered (`source`: cfsd blocks or the local copy). */
export interface ReadEvent {
  layer: string;
  path: string;
  offset: number;
  bytes: number;
  source: 'remote' | 'local';
  ms: number;
}

/** Blocks arrived from the backend: the same event as the cfsd client's. */
export type { BlockFetchEvent };

/** Content cache lookups of one read: blocks found, and blocks that had to be waited for or fetched. */
export interface CacheEvent {
  layer: string;
  hits: number;
  misses: number;
}

/** A prefetch call finished: `fetched` of its `blocks` were not cached yet (`bytes` of them). */
export interface PrefetchEvent {
  layer: string;
  first: number;
  blocks: number;
  fetched: number;
  bytes: number;
}

/** A read failed and the reader got EIO. */
export interface ReadErrorEvent {
  layer: string;
  path: string;
  error: GcfsError;
}

export interface FuseEvents {
  read: [ReadEvent];
  blockFetch: [BlockFetchEvent];
  cache: [CacheEvent];
  prefetch: [PrefetchEvent];
  readError: [ReadErrorEvent];
}
