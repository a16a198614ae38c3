import { downloader as pb } from '@gcfs/proto';
import { bindGrpcUnixSocket, createUnixSocketServer, serveMetrics, stopGrpc } from '@gcfs/serving';
import { untarLayer } from '../untar/index.js';
import type { RegistryAccessOptions, Untar } from './fetch-layer.js';
import { createDownloaderService, type ResponseObserver } from './grpc-service.js';
import { type CacheRecovery, LayerCache } from './layer-cache.js';
import { LayerDownloader } from './manager.js';
import { DownloaderMetrics } from './metrics.js';

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
  const server = createUnixSocketServer();
  server.addService(
    pb.DownloaderService,
    createDownloaderService(downloader, (request, outcome) => {
      metrics.observeResponse(outcome);
      options.onResponse?.(request, outcome);
    }),
  );

  const address = await bindGrpcUnixSocket(server, options.socketPath);
  let http: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    http = options.metricsListen ? await serveMetrics(options.metricsListen, metrics.registry) : undefined;
  } catch (err) {
    await stopGrpc(server, 0, options.socketPath);
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    address,
    metricsAddress: http?.address,
    downloader,
    metrics,
    recovery,
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        const shutdown = stopGrpc(server, graceMs, options.socketPath);
        await downloader.close();
        await shutdown;
        await http?.close();
      })();
      return stopped;
    },
  };
}
