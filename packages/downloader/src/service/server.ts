import { rm } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { downloader as pb } from '@gcfs/proto';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { untarLayer } from '../untar/index.js';
import type { RegistryAccessOptions, Untar } from './fetch-layer.js';
import { createDownloaderService, type ResponseObserver } from './grpc-service.js';
import { type CacheRecovery, LayerCache } from './layer-cache.js';
import { LayerDownloader } from './manager.js';
import { DownloaderMetrics } from './metrics.js';
import { prepareSocketPath, restrictSocket } from './socket.js';

export interface DownloaderServerOptions {
  /** The Unix socket to serve on (--downloader_uds_path). */
  socketPath: string;
  /** The layer cache dir (--layer_cache_dir). */
  cacheDir: string;
  /** --max_layer_downloads */
  maxConcurrentDownloads: number;
  registry?: RegistryAccessOptions;
  /** `host:port` for Prometheus `/metrics`; undefined: no metrics endpoint. */
  metricsListen?: string;
  /** Called with each Download call answered (logs). */
  onResponse?: ResponseObserver;
  /** How layers are unpacked; the untar library by default. */
  untar?: Untar;
}

export interface RunningDownloader {
  /** What clients dial: `unix:/path`. */
  readonly address: string;
  readonly metricsAddress: string | undefined;
  readonly downloader: LayerDownloader;
  readonly metrics: DownloaderMetrics;
  /** What the start-up pass over the cache found (layers) and removed (leftovers). */
  readonly recovery: CacheRecovery;
  /**
   * Stop accepting calls, abort the downloads under way (their untar dirs are removed and
   * their callers answered), then close; calls still open after `graceMs` are cut.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start the downloader: clean the cache of interrupted downloads, then serve the Downloader
 * service on a root-only Unix socket (a stale socket is replaced), and metrics if asked.
 */
export async function startDownloaderServer(options: DownloaderServerOptions): Promise<RunningDownloader> {
  const cache = new LayerCache(options.cacheDir);
  const recovery = await cache.recover();
  const downloader = new LayerDownloader({
    cache,
    maxConcurrent: options.maxConcurrentDownloads,
    untar: options.untar ?? untarLayer,
    ...(options.registry ? { registry: options.registry } : {}),
  });
  const metrics = new DownloaderMetrics(downloader);
  const server = new Server();
  server.addService(
    pb.DownloaderService,
    createDownloaderService(downloader, (request, outcome) => {
      metrics.observeResponse(outcome);
      options.onResponse?.(request, outcome);
    }),
  );

  const address = `unix:${options.socketPath}`;
  await prepareSocketPath(options.socketPath);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  const http = options.metricsListen ? await serveMetrics(options.metricsListen, metrics) : undefined;
  try {
    await restrictSocket(options.socketPath);
  } catch (err) {
    server.forceShutdown();
    http?.close();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    address,
    metricsAddress: http ? hostPort(http) : undefined,
    downloader,
    metrics,
    recovery,
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        const shutdown = new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await downloader.close();
        await shutdown;
        await rm(options.socketPath, { force: true });
        if (http) await new Promise((resolve) => http.close(resolve));
      })();
      return stopped;
    },
  };
}

function hostPort(server: HttpServer): string {
  const { address, port } = server.address() as AddressInfo;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

async function serveMetrics(listen: string, metrics: DownloaderMetrics): Promise<HttpServer> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(colon + 1)), host || undefined, resolve);
  });
  return server;
}
