import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { containerfs, health } from '@gcfs/proto';
import { bindGrpc, serveMetrics, stopGrpc } from '@gcfs/serving';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { BlockReader } from './block-reader.js';
import { createHealthService, type HealthState } from './health.js';
import { ImageRegistry } from './image-registry.js';
import { LayerCompactor } from './layer-compactor.js';
import { LayerIndexer } from './layer-indexer.js';
import { LayerIndexes } from './layer-indexes.js';
import { CfsdMetrics } from './metrics.js';
import { PrefetchReports } from './prefetch.js';
import { RegistryAccess, type RegistryAccessOptions } from './registry-access.js';
import { createContainerFsService } from './service.js';
import { ServingActivity } from './serving-activity.js';
import { SessionKeys } from './session.js';
import { CachedStore } from './store/cached-store.js';
import { FileStore } from './store/file-store.js';
import type { LayerStore } from './store/layer-store.js';
import { openStore } from './store/open-store.js';

export const DEFAULT_COMPACTION_QUIET_MS = 3000;

export interface CfsdOptions {
  /** `host:port` (port 0 picks one) or `unix:/path`. */
  listen: string;
  /** A store URL (`file:///dir`, `memory://`) or a store. */
  store: string | LayerStore;
  tls?: { certFile: string; keyFile: string; caFile?: string };
  registry?: RegistryAccessOptions;
  sessionTtlMs?: number;
  sessionKey?: Buffer;
  indexConcurrency?: number;
  blockSize?: number;
  maxBlocksPerRead?: number;
  /** Bytes of hot blocks kept in memory in front of the store; 0 disables. */
  blockCacheBytes?: number;
  /** `host:port` for Prometheus `/metrics` and `/healthz`; undefined disables. */
  metricsListen?: string;
  /** Milliseconds without AuthImage/GetLayerIndex/ReadBlocks before compaction runs (default 3 s). */
  compactionQuietMs?: number;
}

export interface RunningCfsd {
  /** What clients dial: `127.0.0.1:PORT` or `unix:/path`. */
  readonly address: string;
  readonly metricsAddress: string | undefined;
  readonly metrics: CfsdMetrics;
  readonly indexer: LayerIndexer;
  readonly compactor: LayerCompactor;
  /** Stop serving: health turns NOT_SERVING, calls in flight get `graceMs` to finish. */
  stop(graceMs?: number): Promise<void>;
}

/** Start the content service: gRPC (ContainerFS + health) and optionally the metrics endpoint. */
export async function startCfsd(options: CfsdOptions): Promise<RunningCfsd> {
  const baseStore = typeof options.store === 'string' ? await openStore(options.store) : options.store;
  const cacheBytes = options.blockCacheBytes ?? 256 * 1024 * 1024;
  const cached = cacheBytes > 0 ? new CachedStore(baseStore, { maxBytes: cacheBytes }) : undefined;
  const store = cached ?? baseStore;
  const metrics = new CfsdMetrics(cached);
  const indexer = new LayerIndexer(store, {
    concurrency: options.indexConcurrency ?? 4,
    ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }),
  });
  metrics.watchIndexer(indexer);
  const indexes = new LayerIndexes(store);
  const activity = new ServingActivity(options.compactionQuietMs ?? DEFAULT_COMPACTION_QUIET_MS);
  const compactor = new LayerCompactor(store, indexes, activity, { source: baseStore });
  indexer.on('indexed', ({ digest }) => compactor.enqueue(digest));
  metrics.watchCompactor(compactor);
  const healthState: HealthState = { serving: true };

  const server = new Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  server.addService(
    containerfs.ContainerFSService,
    createContainerFsService({
      access: new RegistryAccess(options.registry ?? {}),
      sessions: new SessionKeys({
        ttlMs: options.sessionTtlMs ?? 60 * 60 * 1000,
        ...(options.sessionKey ? { key: options.sessionKey } : {}),
      }),
      images: new ImageRegistry(),
      indexer,
      indexes,
      store,
      blocks: new BlockReader(indexes, store, options.maxBlocksPerRead ?? 64),
      activity,
      // Beside a file store's layers, so that they survive restarts as the indexes do.
      prefetch: new PrefetchReports(
        baseStore instanceof FileStore ? join(baseStore.root, 'prefetch') : undefined,
      ),
      observe: (method, err, seconds, bytes) => metrics.observeCall(method, err, seconds, bytes),
    }),
  );
  server.addService(health.HealthService, createHealthService(healthState));

  const credentials = options.tls
    ? ServerCredentials.createSsl(
        options.tls.caFile ? await readFile(options.tls.caFile) : null,
        [
          {
            cert_chain: await readFile(options.tls.certFile),
            private_key: await readFile(options.tls.keyFile),
          },
        ],
        Boolean(options.tls.caFile),
      )
    : ServerCredentials.createInsecure();
  const port = await bindGrpc(server, options.listen, credentials);
  const address = options.listen.startsWith('unix:')
    ? options.listen
    : `${options.listen.slice(0, options.listen.lastIndexOf(':'))}:${port}`;

  const http = options.metricsListen
    ? await serveMetrics(options.metricsListen, metrics.registry, () => healthState.serving)
    : undefined;
  // Raw layers left by a previous run are found and compacted too.
  compactor.start({ scan: true });

  let stopped: Promise<void> | undefined;
  return {
    address,
    metricsAddress: http?.address,
    metrics,
    indexer,
    compactor,
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        healthState.serving = false;
        await stopGrpc(server, graceMs);
        await compactor.stop();
        await http?.close();
        await store.close();
      })();
      return stopped;
    },
  };
}
