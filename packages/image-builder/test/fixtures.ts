import { createHash } from 'node:crypto';
import type { TreeNode, TreeSnapshot } from '@gcfs/testkit';
import { DEFAULT_MTIME, type Entry, seededSha256 } from '../src/index.js';

export { EVERY_ENTRY_KIND as ENTRIES, LONG_DIR } from '../src/index.js';

export const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** What GNU tar should leave on disk for ENTRIES, as a snapshot to diff against. */
export async function expectedTree(entries: readonly Entry[]): Promise<TreeSnapshot> {
  const tree: TreeSnapshot = new Map();
  const groups = new Map<string, string[]>();
  for (const entry of entries) {
    let path = entry.path;
    const node: TreeNode = {
      type: 'file',
      mode: entry.mode ?? 0o644,
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtimeSec: entry.mtime ?? DEFAULT_MTIME,
      size: 0,
      xattrs: Object.fromEntries(
        Object.entries(entry.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      ),
    };
    switch (entry.type) {
      case 'file': {
        const content = entry.content ?? '';
        if (typeof content === 'string' || content instanceof Uint8Array) {
          node.size = Buffer.byteLength(content);
          node.sha256 = sha256(content);
        } else if ('seed' in content) {
          node.size = content.size;
          node.sha256 = await seededSha256(content);
        }
        break;
      }
      case 'dir':
        node.type = 'dir';
        node.mode = entry.mode ?? 0o755;
        break;
      case 'symlink':
        node.type = 'symlink';
        node.mode = 0o777;
        node.linkTarget = entry.target;
        break;
      case 'char':
      case 'block':
        node.type = entry.type;
        node.rdevMajor = entry.major;
        node.rdevMinor = entry.minor;
        break;
      case 'fifo':
        node.type = 'fifo';
        break;
      case 'whiteout':
        path = path.replace(/[^/]+$/, (name) => `.wh.${name}`);
        node.sha256 = sha256('');
        break;
      case 'opaque':
        path = `${path}/.wh..wh..opq`;
        node.sha256 = sha256('');
        break;
      case 'hardlink': {
        // A hard link is its target's inode: same metadata, one group.
        const group = groups.get(entry.target) ?? [entry.target];
        group.push(path);
        for (const member of group) groups.set(member, group);
        tree.set(path, { ...tree.get(entry.target)! });
        continue;
      }
    }
    tree.set(path, node);
  }
  for (const [path, group] of groups) tree.get(path)!.hardlinkGroup = [...group].sort()[0]!;
  return new Map([...tree].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
