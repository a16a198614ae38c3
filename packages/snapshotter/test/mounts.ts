// Mounting what a snapshotter returns, as containerd's mount package does, for tests.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Mount } from '../src/index.js';

const run = promisify(execFile);

/** Mount `mounts` (one, as our snapshotter returns) on `target` with mount(8). */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  for (const mount of mounts) {
    await run('mount', ['-t', mount.type, '-o', mount.options.join(','), mount.source, target]);
  }
}

/** Lazy unmount, ignoring a target that is not mounted (cleanup after a failure). */
export async function unmount(target: string): Promise<void> {
  await run('umount', ['-l', target]).catch(() => undefined);
}

/** `cat` run by a child process: what another process sees through the mount. */
export async function catFrom(path: string): Promise<string> {
  return (await run('cat', [path])).stdout;
}
