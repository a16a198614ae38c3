import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';

// Enough parallel fsyncs to keep a disk's queue full without exhausting file descriptors.
const PARALLEL_SYNCS = 32;

/** fsync one file or directory (never following a symlink, never blocking on a fifo). */
export async function fsyncPath(path: string, directory = false): Promise<void> {
  const flags =
    constants.O_RDONLY |
    constants.O_NOFOLLOW |
    constants.O_NONBLOCK |
    (directory ? constants.O_DIRECTORY : 0);
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * fsync every regular file and directory under `root` (and `root` itself), so that a
 * rename that publishes the tree never exposes content still only in the page cache.
 * Symlinks, devices and fifos live in their directory's metadata, synced with it.
 */
export async function fsyncTree(root: string): Promise<void> {
  const limit = pLimit(PARALLEL_SYNCS);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const syncs = entries
    .filter((entry) => entry.isFile() || entry.isDirectory())
    .map((entry) => limit(() => fsyncPath(join(entry.parentPath, entry.name), entry.isDirectory())));
  await Promise.all(syncs);
  await fsyncPath(root, true);
}
