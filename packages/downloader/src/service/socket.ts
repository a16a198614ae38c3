import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';

/**
 * Make way for a server socket at `path`: its parent dir created (0700, root only) when
 * missing, a stale socket of a dead downloader removed. Refuses to remove anything that is
 * not a socket, or a socket that a live process still answers on.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new GcfsError(ErrorCode.Config, `${path} exists and is not a socket: not replacing it`, {
      hint: 'choose another --downloader_uds_path or remove the file',
    });
  }
  if (await answers(path)) {
    throw new GcfsError(ErrorCode.Config, `another process is serving on ${path}`, {
      hint: 'is a downloader already running?',
    });
  }
  await unlink(path);
}

/** Root only: connecting to a Unix socket needs write permission on it. */
export function restrictSocket(path: string): Promise<void> {
  return chmod(path, 0o600);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
