// What `du` counts under a directory: a snapshot's usage (containerd's Usage call), gcfsd's
// layer cache (gcfsctl status).

import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskUsage {
  /** Bytes of disk allocated (st_blocks × 512), each hard-linked inode once. */
  size: number;
  inodes: number;
}

/** What `du` counts under `dir` (itself included), as containerd's fs.DiskUsage does. */
export async function diskUsage(dir: string): Promise<DiskUsage> {
  const seen = new Set<bigint>();
  const usage: DiskUsage = { size: 0, inodes: 0 };
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path, { bigint: true });
    if (!seen.has(stats.ino)) {
      seen.add(stats.ino);
      usage.size += Number(stats.blocks) * 512;
      usage.inodes++;
    }
    if (!stats.isDirectory()) return;
    for (const entry of await readdir(path)) await visit(join(path, entry));
  };
  await visit(dir);
  return usage;
}
