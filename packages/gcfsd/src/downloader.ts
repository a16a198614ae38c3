// `gcfsd --downloader`: the async layer downloader process. It serves the Downloader gRPC
// service on --downloader_uds_path and logs what GKE's downloader logs.

import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from '@gcfs/core';
import { describeError } from '@gcfs/core';
import { describeDownloadOutcome, describeDownloadRequest, startDownloaderServer } from '@gcfs/downloader';
import { registryAccess } from '@gcfs/registry';
import { type GcfsdConfig, layerCacheDir } from './flags.js';

/** Run the downloader until SIGTERM or SIGINT; the process's exit code. */
export async function runDownloader(config: GcfsdConfig, logger: Logger): Promise<number> {
  const layercache = logger.child({ module: 'layercache' });
  const download = logger.child({ module: 'download' });
  const cacheDir = layerCacheDir(config);
  // Linux's niceness is per thread: every thread running now, and those started later
  // (libuv's pool, workers) inherit it from the main thread.
  if (config.downloader_niceness > 0) {
    try {
      for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), config.downloader_niceness);
    } catch (err) {
      logger.warn('Could not lower the downloader priority', {
        module: 'download',
        error: describeError(err),
      });
    }
  }
  let running: Awaited<ReturnType<typeof startDownloaderServer>>;
  try {
    running = await startDownloaderServer({
      socketPath: config.downloader_uds_path,
      cacheDir,
      maxConcurrentDownloads: config.max_layer_downloads,
      registry: registryAccess(config),
      ...(config.downloader_metrics_port > 0 ? { metricsListen: `:${config.downloader_metrics_port}` } : {}),
      onResponse: (request, outcome) =>
        download.info(
          `downloader responded OK (succeeded=${outcome.succeeded}, hasMismatchedHash=${outcome.hasMismatchedHash})`,
          { download_req: describeDownloadRequest(request), download_resp: describeDownloadOutcome(outcome) },
        ),
    });
  } catch (err) {
    logger.fatal('The layer downloader could not start', { module: 'download', error: describeError(err) });
    return 1;
  }

  const { downloader, recovery } = running;
  for (const dir of recovery.removed) layercache.info('Removed leftover untar dir', { untar_dir: dir });
  layercache.info(`Detected ${recovery.layers} existing layers in cacheDir`);
  downloader.on('started', (e) =>
    layercache.info('Starting layer download/unpack', {
      cached_layer_dir: e.layerDir,
      image_name: e.imageName,
      layer_id: e.digest,
    }),
  );
  downloader.on('untarred', (e) =>
    download.info('Layer untar succeeded', { size: e.tarBytes, untar_dir: e.untarDir }),
  );
  downloader.on('finished', ({ outcome, ...e }) => {
    const fields = {
      cached_layer_dir: e.layerDir,
      image_name: e.imageName,
      layer_id: e.digest,
      bytes: outcome.bytes,
      seconds: outcome.seconds.toFixed(3),
    };
    if (outcome.succeeded) layercache.info('Layer download/untar done (succeeded=true)', fields);
    else {
      layercache.error('Layer download/untar failed (succeeded=false)', {
        ...fields,
        error_code: outcome.errorCode,
        has_mismatched_hash: outcome.hasMismatchedHash,
        error: outcome.errorReason,
      });
    }
  });
  download.info('Layer downloader serving', {
    socket: config.downloader_uds_path,
    cache_dir: cacheDir,
    max_layer_downloads: config.max_layer_downloads,
    metrics: running.metricsAddress ?? 'disabled',
  });

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  download.info('Shutting down: cancelling layer downloads', { signal, in_flight: downloader.inFlight });
  await running.stop();
  download.info('Layer downloader stopped');
  return 0;
}
