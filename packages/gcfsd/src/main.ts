// The gcfsd executable. It parses its flags and sets up logging; with --downloader it runs
// the async layer downloader, else the FUSE server (daemon/).

import { compatibilityNotice, loggableValues, resolveCommandLine } from '@gcfs/cli';
import {
  createLogger,
  describeTightening,
  gcfsVersion,
  onPermissionsTightened,
  registerSecret,
} from '@gcfs/core';
import { runFuseServer } from './daemon/run.js';
import { runDownloader } from './downloader.js';
import { GCFSD_COMMAND } from './flags.js';

async function main(argv: readonly string[]): Promise<number> {
  const commandLine = resolveCommandLine(GCFSD_COMMAND, argv);
  if ('exitCode' in commandLine) return commandLine.exitCode;
  const config = commandLine.values;
  registerSecret(config.add_pull_secret);
  registerSecret(config.test_pull_secret);

  const logger = createLogger({ level: config.log_level, format: config.log_formatter });
  const { version, commit } = gcfsVersion();
  logger.info(config.downloader ? 'Starting gcfsd --downloader' : 'Starting gcfsd', {
    version,
    commit,
    node: process.version,
  });
  // GKE's own command line gives some (max_large_files_cache_size_mb): info, not a warning.
  const notice = compatibilityNotice(commandLine);
  if (notice !== undefined) logger.info(notice);
  logger.debug('Effective configuration', loggableValues(GCFSD_COMMAND.flags, config));
  // Private dirs found looser than they must be (a RuntimeDirectory=, a hostPath) are tightened
  // wherever a library opens them; the operator learns of each here.
  onPermissionsTightened((event) => logger.warn(describeTightening(event)));

  if (config.downloader) return runDownloader(config, logger);
  return runFuseServer(config, logger, version);
}

process.exitCode = await main(process.argv.slice(2));
