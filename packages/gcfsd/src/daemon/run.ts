// `gcfsd` without --downloader: the FUSE server until SIGTERM or SIGINT, then a clean
// unmount and a closed DB. A crash leaves a stale mount, which the next start cleans up.

import { describeError, type Logger } from '@gcfs/core';
import { DownloaderClient } from '@gcfs/downloader';
import type { GcfsdConfig } from '../flags.js';
import { startDaemon } from './daemon.js';
import { fuseMounter } from './fuse-tree.js';
import { notifySystemdReady } from './systemd-notify.js';

/** Run the FUSE server; the process's exit code. */
export async function runFuseServer(config: GcfsdConfig, logger: Logger, version: string): Promise<number> {
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, {
      mount: fuseMounter(logger),
      downloader: new DownloaderClient(config.downloader_uds_path),
      logger,
      version,
    });
  } catch (err) {
    logger.fatal('gcfsd could not start', { module: 'main', error: describeError(err) });
    return 1;
  }
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await notifySystemdReady(logger);
  const signal = await stopped;
  logger.info('GCFSD: shutting down', { signal });
  await daemon.stop();
  logger.info('GCFSD: stopped');
  return 0;
}
