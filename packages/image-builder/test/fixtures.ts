import { createHash } from 'node:crypto';
import type { TreeNode, TreeSnapshot } from '@gcfs/testkit';
import { DEFAULT_MTIME, type Entry, seededSha256 } from '../src/index.js';

// VFS_CAP_REVISION_2 with the effective flag, cap_net_bind_service (bit 10) and cap_sys_admin
// (bit 21) permitted: a value the kernel accepts for security.capability.
const CAPABILITY = Buffer.from([1, 0, 0, 2, 0, 4, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const BINARY = Buffer.from([0x00, 0xff, 0x80, 0xfe, 0x0a, 0x3d, 0xc3]);
export const LONG_DIR = `opt/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_TARGET = `../${'t'.repeat(150)}`;

/** One of every entry kind, with the edge cases a layer has to carry. */
export const ENTRIES: Entry[] = [
  { type: 'dir', path: 'bin', mode: 0o755, mtime: 1_500_000_000 },
  {
    type: 'file',
    path: 'bin/tool',
    mode: 0o4755,
    content: '#!/bin/sh\necho tool\n',
    xattrs: { 'security.capability': CAPABILITY, 'user.origin': 'spec' },
  },
  { type: 'file', path: 'bin/sgid', mode: 0o2711, gid: 5, content: Buffer.from([1, 2, 3]) },
  { type: 'symlink', path: 'bin/link', target: 'tool', xattrs: { 'trusted.sym': 'l' } },
  { type: 'symlink', path: 'bin/longlink', target: LONG_TARGET },
  { type: 'hardlink', path: 'bin/hard', target: 'bin/tool' },
  { type: 'dir', path: 'etc', mode: 0o750, uid: 0, gid: 42, xattrs: { 'user.dir': 'x' } },
  { type: 'file', path: 'etc/empty', mode: 0 },
  {
    type: 'file',
    path: 'etc/binary',
    mode: 0o600,
    uid: 1000,
    gid: 1000,
    uname: 'someone',
    gname: 'group',
    mtime: 1_234_567_890,
    content: BINARY,
    xattrs: { 'user.bin': BINARY, 'trusted.t': BINARY, 'user.empty': '' },
  },
  { type: 'file', path: 'etc/seeded', content: { size: 1_000_003, seed: 'roundtrip' } },
  { type: 'file', path: 'etc/ünïcödé name', content: 'utf-8 ✓' },
  { type: 'file', path: 'etc/bigid', uid: 3_000_000, gid: 4_000_000, mtime: 9_000_000_000, content: 'x' },
  { type: 'whiteout', path: 'etc/deleted' },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'dir', path: 'dev', mode: 0o755 },
  { type: 'char', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
  { type: 'block', path: 'dev/loop9', mode: 0o660, gid: 6, major: 7, minor: 9 },
  { type: 'char', path: 'dev/big', major: 511, minor: 1_000_000 },
  // user.* xattrs are for files and dirs only (the kernel refuses them elsewhere).
  { type: 'fifo', path: 'dev/fifo', mode: 0o600, xattrs: { 'trusted.f': 'fifo' } },
  { type: 'dir', path: 'var', mode: 0o755 },
  { type: 'dir', path: 'var/cache', mode: 0o700, xattrs: { 'trusted.overlay.opaque': 'y' } },
  { type: 'opaque', path: 'var/cache' },
  { type: 'dir', path: 'opt' },
  { type: 'dir', path: `opt/${'d'.repeat(60)}` },
  { type: 'dir', path: LONG_DIR, mode: 0o711 },
  { type: 'file', path: `${LONG_DIR}/file-with-a-long-name`, content: 'deep', xattrs: { 'user.deep': 'y' } },
  {
    type: 'hardlink',
    path: `${LONG_DIR}/hard-with-a-long-name`,
    target: `${LONG_DIR}/file-with-a-long-name`,
  },
];

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
