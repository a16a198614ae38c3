// The indexes of a first pull's layers, loaded as cfsd finishes them. The registration does
// not wait for cfsd (registrar.ts): these layers are downloaded at once meanwhile, and each
// is served from whichever comes first, its index or its local copy.

import { describeError, ErrorCode, isGcfsError, type Logger, retryUntilStopped } from '@gcfs/core';
import type { ImageRecord, LayerRecord } from './images-in-use.js';
import type { ServedImages } from './served-images.js';
import type { SessionPool } from './sessions.js';

export interface IndexLoadsOptions {
  images: Pick<ServedImages, 'inUseRecord' | 'indexLayers'>;
  sessions: Pick<SessionPool, 'get'>;
  logger: Logger;
  /** The layer's index question is settled: loaded, local already, or cannot be indexed. */
  onLoaded?: (digest: string) => void;
  /** Aborted when the daemon stops. */
  signal: AbortSignal;
}

/**
 * Load the indexes of `layers` until each is loaded, local, cannot be indexed, or the image is
 * no longer in use. cfsd forgetting an indexing (a restart, a transient registry failure) is
 * answered with a new AuthImage, which starts it again.
 */
export async function loadIndexes(
  record: ImageRecord,
  layers: readonly LayerRecord[],
  o: IndexLoadsOptions,
): Promise<void> {
  await Promise.all(
    layers.map(({ digest }) =>
      retryUntilStopped(
        async (attempt) => {
          if (o.images.inUseRecord(record.name) === undefined) return true;
          try {
            await o.images.indexLayers(record, [digest]);
            o.onLoaded?.(digest);
            return true;
          } catch (err) {
            if (isGcfsError(err, ErrorCode.NotFound)) {
              await o.sessions
                .get(record.name)
                ?.refresh()
                .catch(() => undefined);
            }
            // Still indexing when the call's deadline came: simply asked again.
            if (!isGcfsError(err, ErrorCode.LayerIndexing)) {
              o.logger.warn('Loading a layer index from cfsd failed; retrying', {
                image: record.name,
                layer: digest,
                attempt,
                error: describeError(err),
              });
            }
            return false;
          }
        },
        { backoff: { initialMs: 500, maxMs: 30_000 }, signal: o.signal },
      ),
    ),
  );
}
