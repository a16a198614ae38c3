// Private paths: the directories and files that hold an image's content or control a daemon
// (the mount point's parent, the layer cache, the snapshotter root, the images-in-use DB,
// cfsd's store, the Unix sockets' dirs) belong to the daemon's user alone. One place decides
// their modes and applies them whatever the umask, the order the processes start in, or who
// made the directory first: systemd's RuntimeDirectory= and a DaemonSet's hostPath create
// 0755. A change is published on a diagnostics channel; each daemon logs it (operations.md).

import diagnosticsChannel from 'node:diagnostics_channel';
import type { Stats } from 'node:fs';
import { chmod, mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ErrorCode, GcfsError } from './errors.js';

/** Owner only: what a private directory is, exactly. */
export const PRIVATE_DIR_MODE = 0o700;
/** Owner only: what a private file is, exactly. */
export const PRIVATE_FILE_MODE = 0o600;

/** diagnostics_channel on which each mode change of a private path is published. */
export const PERMISSIONS_TIGHTENED_CHANNEL = 'gcfs:core:permissions:tightened';
export interface PermissionsTightened {
  path: string;
  /** Permission bits found (e.g. 0o755). */
  from: number;
  /** Permission bits set (PRIVATE_DIR_MODE or PRIVATE_FILE_MODE). */
  to: number;
}
const tightenedChannel = diagnosticsChannel.channel(PERMISSIONS_TIGHTENED_CHANNEL);

/**
 * Directories the whole host shares: making one of them private would break every other
 * service that lives below it, so a daemon configured to use one is refused instead.
 */
const SHARED_DIRS = new Set([
  '/',
  '/dev',
  '/dev/shm',
  '/etc',
  '/home',
  '/media',
  '/mnt',
  '/opt',
  '/run',
  '/srv',
  '/tmp',
  '/usr',
  '/usr/local',
  '/var',
  '/var/cache',
  '/var/lib',
  '/var/tmp',
]);

/**
 * Make `path` a directory only its owner can enter (PRIVATE_DIR_MODE): created if missing
 * (missing parents 0755, as `mkdir -p` makes them), tightened to exactly that if it grants
 * more. Refuses a non-directory, a directory of another user (its owner could loosen it again
 * at any time) and the host's shared directories. Returns the change made, if any.
 */
export async function ensurePrivateDir(path: string): Promise<PermissionsTightened | undefined> {
  const absolute = resolve(path);
  await mkdir(dirname(absolute), { recursive: true, mode: 0o755 });
  try {
    await mkdir(absolute, { mode: PRIVATE_DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const info = await stat(absolute);
  if (!info.isDirectory()) {
    throw new GcfsError(ErrorCode.Config, `${absolute} is not a directory`, {
      hint: 'point the flag at a directory, or remove what is there',
    });
  }
  if (looserThan(info, PRIVATE_DIR_MODE) && SHARED_DIRS.has(await realpath(absolute))) {
    throw new GcfsError(ErrorCode.Config, `${absolute} is shared by the host and cannot be made private`, {
      hint: 'give the daemon a directory of its own below it (e.g. /run/gcfsd, /var/lib/cfsd)',
    });
  }
  return restrict(absolute, info, PRIVATE_DIR_MODE);
}

/**
 * Make the existing file `path` readable by its owner only (PRIVATE_FILE_MODE), for
 * files a library creates with a mode of its own (lmdb's data and lock files).
 */
export async function ensurePrivateFile(path: string): Promise<PermissionsTightened | undefined> {
  const absolute = resolve(path);
  return restrict(absolute, await stat(absolute), PRIVATE_FILE_MODE);
}

/**
 * The permission bits of a secret file (a key) that group or others may read, undefined when
 * only its owner may. Daemons warn rather than change it: the file is the operator's (a
 * Kubernetes secret volume is 0644 unless its defaultMode says otherwise).
 */
export async function looseSecretMode(path: string): Promise<number | undefined> {
  const mode = (await stat(path)).mode & 0o777;
  return (mode & 0o077) === 0 ? undefined : mode;
}

/** `0o755` as `0755`, the way chmod and ls users read modes. */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** The log line for a change, the same in every daemon. */
export function describeTightening(event: PermissionsTightened): string {
  return `Tightened permissions of ${event.path} from ${formatMode(event.from)} to ${formatMode(event.to)}`;
}

/** Call `listener` with every change made in this process; returns the unsubscribe. */
export function onPermissionsTightened(listener: (event: PermissionsTightened) => void): () => void {
  const handler = (message: unknown) => listener(message as PermissionsTightened);
  tightenedChannel.subscribe(handler);
  return () => tightenedChannel.unsubscribe(handler);
}

/** Whether `info` grants any bit `mode` does not (group, others, setuid, setgid, sticky). */
function looserThan(info: Stats, mode: number): boolean {
  return (info.mode & 0o7777 & ~mode) !== 0;
}

async function restrict(path: string, info: Stats, mode: number): Promise<PermissionsTightened | undefined> {
  const owner = process.geteuid?.();
  if (owner !== undefined && info.uid !== owner) {
    throw new GcfsError(
      ErrorCode.Config,
      `${path} belongs to uid ${info.uid}, not to this process's uid ${owner}`,
      {
        hint: `only its owner can keep it private: chown ${owner} ${path}`,
      },
    );
  }
  if (!looserThan(info, mode)) return undefined;
  const from = info.mode & 0o7777;
  await chmod(path, mode);
  const event = { path, from, to: mode };
  if (tightenedChannel.hasSubscribers) tightenedChannel.publish(event);
  return event;
}
