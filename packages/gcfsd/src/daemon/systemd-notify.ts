// Type=notify (deploy/systemd/gcfsd.service): gcfsd tells systemd when it serves, so that
// containerd, ordered after it, finds the mount and the snapshotter socket ready. Node cannot
// send on a Unix datagram socket, so systemd's own systemd-notify does, naming gcfsd's pid
// (root may) so that systemd credits the message to gcfsd whatever NotifyAccess= says.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeError, type Logger } from '@gcfs/core';

const execFileAsync = promisify(execFile);

/** Send `READY=1` to $NOTIFY_SOCKET when systemd gave one; a failure is logged, not fatal. */
export async function notifySystemdReady(
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (!env.NOTIFY_SOCKET) return;
  try {
    await execFileAsync('systemd-notify', [`--pid=${process.pid}`, '--ready'], { env, timeout: 10_000 });
    logger.debug('Told systemd that gcfsd is ready', { notify_socket: env.NOTIFY_SOCKET });
  } catch (err) {
    logger.warn('Could not tell systemd that gcfsd is ready (systemd-notify)', { error: describeError(err) });
  }
}
