// The containerd snapshotter inside gcfsd (--snapshotter_uds_path, --snapshotter_root): its
// remote layers come from the registrar, and every image that is not streamed is said out
// loud: one log line, the fallbacks metric, a Kubernetes event (--event_reporter_type=k8s).

import { describeError, ErrorCode, type Logger } from '@gcfs/core';
import { type FallbackReason, Snapshotter, serveSnapshots } from '@gcfs/snapshotter';
import type { EventReporter } from './k8s-events.js';
import type { DaemonMetrics } from './metrics.js';
import type { Registrar } from './registrar.js';
import { StreamedLayers, streamedImageName } from './streamed-layers.js';

export interface SnapshotServiceOptions {
  root: string;
  socketPath: string;
  mountPoint: string;
  /** --min_streamed_image_size_mb in bytes. */
  minImageBytes: number;
  registrar: Registrar;
  metrics: DaemonMetrics;
  logger: Logger;
  events?: EventReporter;
}

export interface RunningSnapshotService {
  snapshotter: Snapshotter;
  address: string;
  stop(): Promise<void>;
}

const EXPECTED_FALLBACKS: ReadonlySet<FallbackReason> = new Set([
  ErrorCode.ImageTooSmall,
  ErrorCode.NoBackend,
]);

export async function startSnapshotService(o: SnapshotServiceOptions): Promise<RunningSnapshotService> {
  const logger = o.logger.child({ module: 'snapshotter' });
  const layers = new StreamedLayers({
    registrar: o.registrar,
    mountPoint: o.mountPoint,
    minImageBytes: o.minImageBytes,
    onRegistered: (image) => {
      logger.info(`Streaming image ${image.name}`, { layers: image.layers.length });
      o.events?.report({ type: 'Normal', message: `Image ${image.name} is streamed by gcfs` });
    },
  });
  // Without a content service (no --addr) every image falls back for as long as gcfsd runs:
  // each is reported once, however long its pull.
  const snapshotter = await Snapshotter.open(o.root, {
    remote: layers,
    lastingFallbacks: new Set([ErrorCode.NoBackend]),
  });
  snapshotter.on('remote', ({ target, layer }) => {
    o.metrics.remoteSnapshots.inc();
    logger.debug('Committed a remote snapshot', { target, image: layer.imageRef, index: layer.index });
  });
  snapshotter.on('fallback', (event) => {
    o.metrics.streamingFallbacks.inc({ reason: event.reason });
    const image = event.imageRef ?? '(unknown image)';
    // Pulled normally by design, not a warning: small images (the pause image on every node),
    // and every image of a gcfsd without --addr (which said so once at start).
    const expected = EXPECTED_FALLBACKS.has(event.reason);
    logger[expected ? 'info' : 'warn'](
      `Image ${image} is not streamed, containerd pulls it normally: ${event.message}`,
      {
        reason: event.reason,
        manifest_digest: event.manifestDigest,
      },
    );
    o.events?.report({
      type: expected ? 'Normal' : 'Warning',
      message: `Image ${image} is not streamed and is pulled normally (${event.reason}): ${event.message}`,
    });
  });
  snapshotter.on('releaseFailed', ({ layer, error }) => {
    logger.error('Could not release an image no snapshot uses', {
      image: layer.imageRef,
      error: describeError(error),
    });
  });
  // Snapshots outlive gcfsd restarts: their images must be served even if the images-in-use
  // DB lost them (a crash between registration and commit).
  for (const layer of snapshotter.remoteImages()) {
    const name = streamedImageName(layer);
    // Restored from the images-in-use DB already: list() holds every image in use.
    if (o.registrar.list().some((image) => image.name === name)) continue;
    void layers.prepare(layer).catch((err: unknown) =>
      logger.error('Cannot serve the image of existing remote snapshots', {
        image: name,
        error: describeError(err),
      }),
    );
  }
  let served: Awaited<ReturnType<typeof serveSnapshots>>;
  try {
    served = await serveSnapshots(snapshotter, o.socketPath);
  } catch (err) {
    await snapshotter.close();
    throw err;
  }
  logger.info('Serving the containerd snapshotter', { socket: o.socketPath, root: o.root });
  return {
    snapshotter,
    address: served.address,
    async stop() {
      await served.stop();
      await snapshotter.close();
    },
  };
}
