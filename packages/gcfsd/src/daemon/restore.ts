// Images restored from the images-in-use DB at start. They go back in the tree at once,
// before cfsd answers, because snapshots already mounted use their paths, and their
// downloads start at once (no container is starting). Each is then authorized with cfsd in
// the background, retrying until cfsd answers, unless it is registered again (a fresh
// session) or no longer used meanwhile; its layers' tables and prefetch come after. Without
// cfsd (no --addr) they are served from their downloaded layers only.

import { type BackoffOptions, describeError, type Logger, retryUntilStopped } from '@gcfs/core';
import type { ImageRecord } from './images-in-use.js';
import type { PullCredential } from './layer-downloads.js';
import type { CredentialResolver, ImageAuthenticator } from './registrar.js';
import type { ServedImages } from './served-images.js';
import type { SessionLike, SessionPool } from './sessions.js';

export interface RestoreOptions {
  images: Pick<ServedImages, 'restore' | 'inUseRecord' | 'indexLayers'>;
  sessions: SessionPool;
  /** Undefined without a content service: nothing is authorized. */
  cfsd: ImageAuthenticator | undefined;
  secrets: CredentialResolver;
  startDownloads(record: ImageRecord, credential: PullCredential): void;
  prefetch(name: string, session: SessionLike): Promise<void>;
  logger: Logger;
  /** Pace of AuthImage retries (default 1 s doubling to 1 min). */
  backoff?: BackoffOptions;
  /** Aborted when the daemon stops: retries end. */
  signal: AbortSignal;
}

/** Put the DB's images back in the tree and authorize them in the background; returns how many. */
export async function restoreImages(o: RestoreOptions): Promise<number> {
  const images = await o.images.restore();
  const { cfsd } = o;
  if (cfsd === undefined && images.length > 0) {
    o.logger.warn('No content service (--addr): images in use are served from their downloaded layers only', {
      images: images.length,
    });
  }
  for (const record of images) {
    void credentialFor(record.name, o).then((credential) => {
      o.startDownloads(record, credential);
      if (cfsd !== undefined) return authorizeInBackground(record.name, credential, cfsd, o);
    });
  }
  return images.length;
}

async function credentialFor(name: string, o: RestoreOptions): Promise<PullCredential> {
  try {
    return (await o.secrets.forImage(name)).credential;
  } catch (err) {
    o.logger.error('No credential for the image: trying anonymously', {
      image: name,
      error: describeError(err),
    });
    return {};
  }
}

async function authorizeInBackground(
  name: string,
  credential: PullCredential,
  cfsd: ImageAuthenticator,
  o: RestoreOptions,
): Promise<void> {
  // Registered again meanwhile (a fresh session), or no longer used: nothing to do.
  const settled = () => o.sessions.get(name) !== undefined || o.images.inUseRecord(name) === undefined;
  await retryUntilStopped(
    async (attempt) => {
      if (settled()) return true;
      try {
        const session = await cfsd.authImage(name, credential, { wait: false });
        const record = o.images.inUseRecord(name);
        if (record === undefined || settled()) {
          session.close();
          return true;
        }
        // Its layers' tables come through this session: a failure below drops it and retries.
        o.sessions.set(
          name,
          session,
          record.layers.map((layer) => layer.digest),
        );
        await o.images.indexLayers(record);
        o.logger.info('Restored image authorized with cfsd', { image: name, attempt });
        await o.prefetch(name, session);
        return true;
      } catch (err) {
        o.sessions.delete(name);
        o.logger.warn('AuthImage of a restored image failed; retrying', {
          image: name,
          attempt,
          error: describeError(err),
        });
        return false;
      }
    },
    { backoff: o.backoff ?? { initialMs: 1_000, maxMs: 60_000 }, signal: o.signal },
  );
}
