import { join } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { snapshotTree } from '@gcfs/testkit';
import type { Entry, EntryBase } from './spec.js';

/**
 * The entries of a real directory tree, sorted by path (so layers are reproducible):
 * dirs, files (content copied at build time), symlinks, hardlinks (same inode → a tar link
 * to the first path), char/block devices, fifos, with modes, owners, mtimes and xattrs.
 * Whiteouts are whatever `.wh.*` files the tree holds.
 */
export async function directoryEntries(dir: string): Promise<Entry[]> {
  const tree = await snapshotTree(dir, { hashContent: false });
  const entries: Entry[] = [];
  for (const [path, node] of tree) {
    const base: EntryBase = {
      path,
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      mtime: node.mtimeSec,
      xattrs: Object.fromEntries(
        Object.entries(node.xattrs).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
      ),
    };
    if (node.hardlinkGroup !== undefined && node.hardlinkGroup !== path) {
      entries.push({ ...base, type: 'hardlink', target: node.hardlinkGroup });
      continue;
    }
    switch (node.type) {
      case 'file':
        entries.push({ ...base, type: 'file', content: { path: join(dir, path) } });
        break;
      case 'dir':
      case 'fifo':
        entries.push({ ...base, type: node.type });
        break;
      case 'symlink':
        entries.push({ ...base, type: 'symlink', target: node.linkTarget ?? '' });
        break;
      case 'char':
      case 'block':
        entries.push({ ...base, type: node.type, major: node.rdevMajor ?? 0, minor: node.rdevMinor ?? 0 });
        break;
      case 'socket':
        throw new GcfsError(ErrorCode.InvalidArgument, `${join(dir, path)}: sockets cannot go into a layer`);
    }
  }
  return entries;
}
