import { readFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { containerfs, health } from '@gcfs/proto';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { createHealthService, type HealthState } from './health.js';
import { ImageRegistry } from './image-registry.js';
import { LayerIndexer } from './layer-indexer.js';
import { LayerIndexes } from './layer-indexes.js';
import { CfsdMetrics } from './metrics.js';
import { PrefetchReports } from './prefetch.js';
import { RegistryAccess, type RegistryAccessOptions } from './registry-access.js';
import { createContainerFsService } from './service.js';
import { SessionKeys } from './session.js';
import { CachedStore } from './store/cached-store.js';
import type { LayerStore } from './store/layer-store.js';
import { openStore } from './store/open-store.js';

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
}

export interface RunningCfsd {
  /** What clients dial: `127.0.0.1:PORT` or `unix:/path`. */
  readonly address: string;
  readonly metricsAddress: string | undefined;
  readonly metrics: CfsdMetrics;
  readonly indexer: LayerIndexer;
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
      indexes: new LayerIndexes(store),
      store,
      prefetch: new PrefetchReports(),
      maxBlocksPerRead: options.maxBlocksPerRead ?? 64,
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
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const address = options.listen.startsWith('unix:')
    ? options.listen
    : `${options.listen.slice(0, options.listen.lastIndexOf(':'))}:${port}`;

  const http = options.metricsListen
    ? await startMetricsServer(options.metricsListen, metrics, healthState)
    : undefined;

  let stopped: Promise<void> | undefined;
  return {
    address,
    metricsAddress: http ? hostPort(http) : undefined,
    metrics,
    indexer,
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        healthState.serving = false;
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        if (http) await new Promise((resolve) => http.close(resolve));
        await store.close();
      })();
      return stopped;
    },
  };
}

function hostPort(server: HttpServer): string {
  const { address, port } = server.address() as AddressInfo;
  return `${address}:${port}`;
}

async function startMetricsServer(
  listen: string,
  metrics: CfsdMetrics,
  healthState: HealthState,
): Promise<HttpServer> {
  const colon = listen.lastIndexOf(':');
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (req.url === '/healthz') {
      res.writeHead(healthState.serving ? 200 : 503).end(healthState.serving ? 'ok\n' : 'stopping\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), resolve);
  });
  return server;
}
