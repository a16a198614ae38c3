// The gcfsd executable. It parses its flags and sets up logging; with --downloader it runs
// the async layer downloader. The FUSE server, the snapshotter and the content service
// client arrive in a later issue, so until then it says plainly that there is nothing to
// run rather than pretending to serve.

import { loggableValues, resolveCommandLine } from '@gcfs/cli';
import { createLogger, registerSecret } from '@gcfs/core';
import { runDownloader } from './downloader.js';
import { GCFSD_COMMAND } from './flags.js';

async function main(argv: readonly string[]): Promise<number> {
  const commandLine = resolveCommandLine(GCFSD_COMMAND, argv);
  if ('exitCode' in commandLine) return commandLine.exitCode;
  const config = commandLine.values;
  registerSecret(config.add_pull_secret);
  registerSecret(config.test_pull_secret);

  const logger = createLogger({ level: config.log_level, format: config.log_formatter });
  logger.debug('Starting gcfsd', { version: GCFSD_COMMAND.version, node: process.version });
  for (const message of commandLine.deprecations) logger.warn(message);
  logger.debug('Effective configuration', loggableValues(GCFSD_COMMAND.flags, config));

  if (config.downloader) return runDownloader(config, logger);
  logger.fatal(
    `gcfsd ${GCFSD_COMMAND.version} cannot run: the FUSE server, the containerd snapshotter and the content service client are not built yet`,
    { module: 'main' },
  );
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
