// The FUSE side of gcfsd: start-up in the order GKE's gcfsd logs it (stale mount, metrics,
// layer cache, cfsd client, mount, serving, GC), and a stop that unmounts and closes the
// DB. The FUSE file system itself comes from the `mount` dependency (packages/fuse).

import { dirname, join } from 'node:path';
import { CfsdClient, clientOptionsFromFlags } from '@gcfs/cfsd-client';
import { describeError, ErrorCode, ensurePrivateDir, type Logger } from '@gcfs/core';
import { cleanStaleMount } from '@gcfs/fuse';
import { registryAccess } from '@gcfs/registry';
import { serveMetrics } from '@gcfs/serving';
import { type GcfsdConfig, layerCacheDir } from '../flags.js';
import { RecordedCredentials, type RunningKeychain, serveKeychain } from '../keychain/index.js';
import { adminSocketPath, serveAdmin } from './admin.js';
import { GarbageCollector } from './gc.js';
import { registryImageSizer } from './image-size.js';
import { type ImagesInUse, openImagesInUse } from './images-in-use.js';
import { chooseApiServer, eventNodeName, KubernetesEventReporter } from './k8s-events.js';
import { listCachedLayers } from './layer-dirs.js';
import type { LayerDownloader } from './layer-downloads.js';
import { DaemonMetrics, resolveClientUid } from './metrics.js';
import { type DownloadStates, NodeStatus } from './node-status.js';
import { PullSecrets } from './pull-secrets.js';
import { ReadActivity } from './read-activity.js';
import { type LayerRead, ReadReporter, type ReadReportTiming } from './read-reports.js';
import { Readiness } from './readiness.js';
import { Registrar } from './registrar.js';
import type { ImageTree } from './served-images.js';
import { SessionPool } from './sessions.js';
import { type RunningSnapshotService, startSnapshotService } from './snapshots.js';

/** What the daemon needs to mount the tree (packages/fuse's mountGcfs, adapted). */
export interface MountOptions {
  mountPoint: string;
  asyncRead: boolean;
  maxReadAhead: number;
  debug: boolean;
  maxReadBlocks: number;
  failOnMaxReadBlocks: boolean;
  maxContentCacheBytes: number;
  flattenImages: boolean;
  /** Every FUSE read of a layer file (for the prefetch reports' read recording). */
  onRead?: (read: LayerRead & { source: 'remote' | 'local' }) => void;
  /** Streamed layers' source: index and blocks from cfsd. */
  sessions: SessionPool;
  metrics: DaemonMetrics;
}

export interface MountedTree extends ImageTree {
  unmount(): Promise<void>;
  /** The content cache's use (the admin API's Status). */
  stats(): { cacheBytes: number; cacheBlocks: number };
  /** Whether the FUSE file system is mounted (read from mountinfo). */
  mounted(): Promise<boolean>;
}

export interface DaemonDependencies {
  mount: (options: MountOptions) => Promise<MountedTree>;
  /** The downloader's client on --downloader_uds_path. */
  downloader: LayerDownloader & DownloadStates & { close(): void };
  logger: Logger;
  version: string;
  /** How long start-up reads are recorded for cfsd (tests shorten it); see read-reports.ts. */
  readReports?: Partial<ReadReportTiming>;
}

export interface RunningDaemon {
  registrar: Registrar;
  gc: GarbageCollector;
  metrics: DaemonMetrics;
  metricsPort: number;
  adminSocket: string;
  /** With --enable_pull_secret_keychain: the credentials it recorded. */
  keychain: RecordedCredentials | undefined;
  /** Absent with an empty --snapshotter_uds_path. */
  snapshots: RunningSnapshotService | undefined;
  /** Unmount, close the DB and every connection; safe to call twice. */
  stop(): Promise<void>;
}

export async function startDaemon(config: GcfsdConfig, deps: DaemonDependencies): Promise<RunningDaemon> {
  const { logger } = deps;
  const startedAt = Date.now();
  // The same default as the downloader's, so both processes agree on the cache dir.
  const cacheDir = layerCacheDir(config);
  // Refuse a bad configuration before touching mounts, ports or directories. No --addr (GKE's
  // command line): no content service, every image pulled normally (ERR_NO_BACKEND).
  const clientOptions = config.addr === '' ? undefined : clientOptionsFromFlags(config);
  const eventsTo =
    config.event_reporter_type === 'k8s' ? await chooseApiServer(config.kubeconfig) : undefined;
  const cleanups: Array<() => unknown> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.error('Error while stopping', { error: describeError(err) });
      }
    }
  };
  try {
    // A crashed gcfsd's mount hangs every reader: abort and detach it first.
    if (await cleanStaleMount(config.mount_point)) {
      logger.info('Unmounted a stale mount', { mount_point: config.mount_point });
    }

    const clientUid = await resolveClientUid(config.client_uid);
    const metrics = new DaemonMetrics({
      client_name: config.client_name,
      client_uid: clientUid,
      client_version: config.client_version,
    });
    const readiness = new Readiness();
    const served = await serveMetrics(`:${config.port}`, metrics.registry, () => true, readiness.check);
    logger.info('Starting Prometheus metrics HTTP handler', { port: served.port });
    cleanups.push(() => served.close());

    // Every downloaded layer's content: root's alone, as the downloader also makes it.
    await ensurePrivateDir(cacheDir);
    const cached = await listCachedLayers(cacheDir);
    logger.info(`Detected ${cached.length} existing layers in cacheDir`, { module: 'layercache' });

    let cfsd: CfsdClient | undefined;
    if (clientOptions !== undefined) {
      logger.info(
        `GCFSD (version=${JSON.stringify(deps.version)}): creating Container File System client with addr=${JSON.stringify(config.addr)}, layer_cache_dir=${JSON.stringify(cacheDir)}`,
      );
      const client = new CfsdClient({
        ...clientOptions,
        client: { ...clientOptions.client, uid: clientUid },
      });
      client.on('blockFetch', (event) => metrics.blockFetched(event));
      readiness.setCfsd((timeoutMs) => client.health(timeoutMs));
      cleanups.push(() => client.close());
      cfsd = client;
    } else {
      logger.warn(
        `GCFSD (version=${JSON.stringify(deps.version)}): no Container File System address (--addr): nothing is streamed, every image is pulled normally`,
        { reason: ErrorCode.NoBackend, layer_cache_dir: cacheDir },
      );
    }
    cleanups.push(() => deps.downloader.close());
    const db: ImagesInUse = await openImagesInUse(config.images_in_use_db_path);
    cleanups.push(() => db.close());
    let keychain: RecordedCredentials | undefined;
    if (config.enable_pull_secret_keychain) {
      // Beside the images-in-use DB (in its private dir): what restoring its images needs.
      keychain = await RecordedCredentials.open({
        path:
          config.images_in_use_db_path === ''
            ? undefined
            : join(dirname(config.images_in_use_db_path), 'keychain.json'),
        ttlMs: config.keychain_credential_ttl,
        logger,
      });
      const server: RunningKeychain = await serveKeychain({
        socketPath: config.keychain_uds_path,
        containerdAddress: config.containerd_address,
        credentials: keychain,
        logger,
        onRecorded: (source) => metrics.keychainUpdates.inc({ source }),
      });
      cleanups.push(() => server.stop());
    }
    const secrets = await PullSecrets.fromFlags(config, undefined, keychain);
    const sessions = new SessionPool();
    cleanups.push(() => sessions.closeAll());
    const activity = new ReadActivity();
    const reads = config.enable_prefetching
      ? new ReadReporter({ sessionOf: (name) => sessions.get(name), logger, timing: deps.readReports })
      : undefined;
    if (reads !== undefined) cleanups.push(() => reads.close());

    logger.info(
      `GCFSD: mounting with mount_point=${JSON.stringify(config.mount_point)}, maxReadAhead=${config.max_read_ahead} (<=0 for default), asyncRead=${config.async_read}`,
    );
    // With allow_other, anyone who can reach the mount point reads the image's files: its
    // parent (which also holds admin.sock) and the mount point are root's alone. Containers
    // are unaffected: overlayfs resolves lowerdir when containerd (root) mounts it and reads
    // the lower layers with the mounter's credentials.
    await ensurePrivateDir(dirname(config.mount_point));
    await ensurePrivateDir(config.mount_point);
    const tree = await deps.mount({
      mountPoint: config.mount_point,
      asyncRead: config.async_read,
      maxReadAhead: config.max_read_ahead,
      debug: config.fuse_debug,
      maxReadBlocks: config.max_read_blocks,
      failOnMaxReadBlocks: config.fail_on_max_read_blocks,
      maxContentCacheBytes: config.max_content_cache_size_mb * 1024 * 1024,
      flattenImages: config.flatten_images,
      onRead: (read) => {
        activity.record(read);
        reads?.record(read);
      },
      sessions,
      metrics,
    });
    cleanups.push(() => tree.unmount());
    readiness.setMounted(true);
    cleanups.push(() => readiness.setMounted(false));

    const registrar = new Registrar({
      cfsd,
      tree,
      sessions,
      db,
      secrets,
      downloader: deps.downloader,
      sizeImage: registryImageSizer(registryAccess(config)),
      cacheDir: cacheDir,
      // Half the content cache at most: prefetched blocks must leave room for readers'.
      prefetch: reads !== undefined && {
        budgetBytes: (config.max_content_cache_size_mb * 1024 * 1024) / 2,
        reads,
      },
      logger,
      onDownload: (result) => metrics.downloaded(result),
      onLayerTransition: (_from, to) => metrics.layerTransition(to),
      downloadsAfter:
        config.download_quiet_period > 0
          ? (signal) => activity.quiet({ quietMs: config.download_quiet_period, maxMs: 30_000, signal })
          : undefined,
    });
    cleanups.push(() => registrar.close());
    metrics.watch({
      imagesInUse: () => registrar.inUse().images.size,
      downloadsInFlight: () => registrar.downloadsInFlight,
      layers: () => registrar.layerCounts(),
    });
    const restored = await registrar.restore();
    if (restored > 0) logger.info(`Restored ${restored} images in use`, { db: config.images_in_use_db_path });

    let events: KubernetesEventReporter | undefined;
    if (eventsTo !== undefined) {
      events = new KubernetesEventReporter({
        logger,
        node: await eventNodeName(eventsTo.api),
        ...(eventsTo.api === undefined ? {} : { apiServer: eventsTo.api }),
        ...(eventsTo.undelivered === undefined ? {} : { undelivered: eventsTo.undelivered }),
      });
      const reporter = events;
      cleanups.push(() => reporter.close());
    }
    let snapshots: RunningSnapshotService | undefined;
    if (config.snapshotter_uds_path !== '') {
      snapshots = await startSnapshotService({
        root: config.snapshotter_root,
        socketPath: config.snapshotter_uds_path,
        mountPoint: config.mount_point,
        minImageBytes: config.min_streamed_image_size_mb * 1024 * 1024,
        registrar,
        metrics,
        logger,
        events,
      });
      const service = snapshots;
      cleanups.push(() => service.stop());
      readiness.setSnapshotter('serving');
      cleanups.push(() => readiness.setSnapshotter('down'));
    } else {
      readiness.setSnapshotter('off');
    }

    const gc = new GarbageCollector({
      subject: registrar,
      cacheDir: cacheDir,
      logger,
      periodMs: config.gc_period,
      onRun: (result) => metrics.collected(result),
    });
    const adminSocket = adminSocketPath(config.mount_point);
    const node = new NodeStatus({
      version: deps.version,
      startedAt,
      mountPoint: config.mount_point,
      cacheDir,
      contentCacheLimitBytes: config.max_content_cache_size_mb * 1024 * 1024,
      registrar,
      tree,
      downloader: { socket: config.downloader_uds_path, states: deps.downloader },
      ...(cfsd && { cfsd: { address: config.addr, health: () => cfsd.health() } }),
    });
    const admin = await serveAdmin(
      {
        register: (image, options) => registrar.register(image, options),
        unregister: (name) => registrar.unregister(name),
        list: () => registrar.list(),
        collect: () => gc.run(),
        status: () => node.status(),
        layers: (digests) => node.layers(digests),
      },
      adminSocket,
    );
    cleanups.push(() => admin.stop());

    logger.info('GCFSD: serving', { admin_socket: adminSocket });
    gc.start();
    cleanups.push(() => gc.stop());
    return { registrar, gc, metrics, metricsPort: served.port, adminSocket, keychain, snapshots, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
