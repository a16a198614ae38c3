// Files that must survive a crash whole or not at all (a store's manifests, gcfsd's recorded
// pull secrets): written private (0600), fsync-ed, and renamed into place with their
// directory fsync-ed, so that a reader after a power cut or SIGKILL sees the old content or
// the new one, never a mix.

import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PRIVATE_FILE_MODE } from './private-paths.js';

/** Write a new private file (it must not exist yet) and fsync it before returning. */
export async function writeDurable(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory, so that the entries created or renamed in it survive a crash. */
export async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replace `path` with a private file holding `data`, atomically and durably. */
export async function replaceDurably(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeDurable(temp, data);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}
