// The daemon's view of @gcfs/fuse: mountGcfs with gcfsd's flags (--flatten_images too),
// layers whose tables of contents and blocks come from the session pool, prefetches into
// its content cache, and the file system's events counted in the daemon's metrics (and
// its reads handed to the read recording).

import { describeError, type Logger } from '@gcfs/core';
import { isFuseMounted, mountGcfs } from '@gcfs/fuse';
import type { MountedTree, MountOptions } from './daemon.js';

export function fuseMounter(logger: Logger): (options: MountOptions) => Promise<MountedTree> {
  return async (options) => {
    const { sessions, metrics } = options;
    const mount = await mountGcfs({
      mountPoint: options.mountPoint,
      asyncRead: options.asyncRead,
      maxReadAhead: options.maxReadAhead,
      debug: options.debug,
      flattenImages: options.flattenImages,
      content: {
        maxReadBlocks: options.maxReadBlocks,
        failOnMaxReadBlocks: options.failOnMaxReadBlocks,
        cacheBytes: options.maxContentCacheBytes,
      },
    });
    mount.on('read', (event) => {
      metrics.reads.inc({ source: event.source });
      metrics.readBytes.inc({ source: event.source }, event.bytes);
      options.onRead?.(event);
    });
    mount.on('prefetch', (event) => metrics.prefetchedBytes.inc(event.bytes));
    mount.on('cache', (event) => {
      metrics.cacheHits.inc(event.hits);
      metrics.cacheMisses.inc(event.misses);
    });
    mount.on('readError', (event) =>
      logger.warn('FUSE read failed', {
        layer: event.layer,
        path: event.path,
        error: describeError(event.error),
        module: 'filesystem_lib',
      }),
    );
    const { tree } = mount;
    return {
      async addLayer(digest) {
        const table = await sessions.layerIndex(digest);
        tree.addLayer(digest, { table, remote: sessions });
      },
      useLocalLayer: (digest, dir) => tree.switchLayer(digest, dir),
      prefetch: (digest, first, count) => mount.prefetch(digest, first, count),
      setImage: (name, layers) => tree.setImage(name, layers),
      removeImage: (name) => void tree.removeImage(name),
      removeLayer: (digest) => void tree.removeLayer(digest),
      unmount: () => mount.unmount(),
      stats: () => mount.stats(),
      mounted: () => isFuseMounted(options.mountPoint),
    };
  };
}
