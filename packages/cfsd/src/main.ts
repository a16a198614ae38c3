// The cfsd executable: flags, logging, the service, graceful shutdown on SIGTERM/SIGINT.

import { readFile } from 'node:fs/promises';
import { compatibilityNotice, loggableValues, resolveCommandLine } from '@gcfs/cli';
import {
  createLogger,
  describeError,
  describeTightening,
  formatMode,
  gcfsVersion,
  type Logger,
  looseSecretMode,
  onPermissionsTightened,
} from '@gcfs/core';
import { registryAccess } from '@gcfs/registry';
import { CFSD_COMMAND } from './flags.js';
import { startCfsd } from './server.js';

async function main(argv: readonly string[]): Promise<number> {
  const commandLine = resolveCommandLine(CFSD_COMMAND, argv);
  if ('exitCode' in commandLine) return commandLine.exitCode;
  const config = commandLine.values;
  const logger = createLogger({ level: config.log_level, format: config.log_formatter }).child({
    module: 'cfsd',
  });
  const notice = compatibilityNotice(commandLine);
  if (notice !== undefined) logger.info(notice);
  logger.debug('Effective configuration', loggableValues(CFSD_COMMAND.flags, config));

  if (Boolean(config.tls_cert_file) !== Boolean(config.tls_key_file)) {
    logger.fatal('--tls_cert_file and --tls_key_file go together');
    return 2;
  }
  onPermissionsTightened((event) => logger.warn(describeTightening(event)));
  try {
    await warnIfReadableByOthers(logger, [
      ['--session_key_file', config.session_key_file],
      ['--tls_key_file', config.tls_key_file],
    ]);
    const cfsd = await startCfsd({
      listen: config.listen,
      store: config.store,
      ...(config.tls_cert_file
        ? {
            tls: {
              certFile: config.tls_cert_file,
              keyFile: config.tls_key_file,
              ...(config.tls_client_ca_file ? { caFile: config.tls_client_ca_file } : {}),
            },
          }
        : {}),
      registry: registryAccess(config),
      sessionTtlMs: config.session_ttl,
      ...(config.session_key_file ? { sessionKey: await readFile(config.session_key_file) } : {}),
      indexConcurrency: config.index_concurrency,
      blockSize: config.block_size_kb * 1024,
      maxBlocksPerRead: config.max_blocks_per_read,
      blockCacheBytes: config.block_cache_size_mb * 1024 * 1024,
      compactionQuietMs: config.compaction_quiet_period,
      ...(config.metrics_listen ? { metricsListen: config.metrics_listen } : {}),
    });
    cfsd.indexer.on('indexed', (e) =>
      logger.info('Layer indexed', {
        layer: e.digest,
        seconds: e.seconds.toFixed(3),
        content_bytes: e.contentBytes,
        blocks: e.blocks,
      }),
    );
    cfsd.indexer.on('failed', (e) =>
      logger.error('Layer indexing failed', { layer: e.digest, reason: e.reason, permanent: e.permanent }),
    );
    cfsd.compactor.on('compacted', (e) =>
      logger.info('Layer compacted', {
        layer: e.digest,
        seconds: e.seconds.toFixed(3),
        bytes_before: e.bytesBefore,
        bytes_after: e.bytesAfter,
      }),
    );
    cfsd.compactor.on('failed', (e) =>
      logger.warn('Layer compaction failed; its raw copy is still served', {
        layer: e.digest ?? 'none',
        reason: e.reason,
      }),
    );
    logger.info('cfsd serving', {
      ...gcfsVersion(),
      addr: cfsd.address,
      metrics: cfsd.metricsAddress ?? 'disabled',
      store: config.store,
    });
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info('Shutting down', { signal });
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await cfsd.stop();
    logger.info('cfsd stopped');
    return 0;
  } catch (err) {
    logger.fatal('cfsd failed', { error: describeError(err) });
    return 1;
  }
}

/**
 * Whoever reads the session key forges sessions for any image, and whoever reads the TLS key
 * impersonates cfsd. The files are the operator's (a Kubernetes secret volume is 0644 unless
 * its defaultMode says otherwise), so cfsd says so rather than changing them.
 */
async function warnIfReadableByOthers(logger: Logger, files: Array<[flag: string, path: string]>) {
  for (const [flag, path] of files) {
    if (!path) continue;
    const mode = await looseSecretMode(path);
    if (mode !== undefined) {
      logger.warn(`${flag} ${path} is readable by other users (mode ${formatMode(mode)}): chmod 0600 it`, {
        file: path,
        mode: formatMode(mode),
      });
    }
  }
}

process.exitCode = await main(process.argv.slice(2));
