import type { Entry } from '@gcfs/image-builder';

export const BLOCK_SIZE = 64 * 1024;
// A real security.capability value (VFS_CAP_REVISION_2, all permitted): bytes >= 0x80.
const CAPABILITY = Buffer.from([
  1, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
]);
const BINARY = Buffer.from([0x00, 0xff, 0x80, 0xfe, 0x0a, 0x3d, 0xc3]);
const LONG_DIR = `usr/${'d'.repeat(70)}/${'e'.repeat(70)}`;

/** Every entry kind, content sizes around the block size, whiteouts and opaque directories. */
export const ENTRIES: Entry[] = [
  { type: 'dir', path: 'bin', mtime: 1_500_000_000 },
  {
    type: 'file',
    path: 'bin/tool',
    mode: 0o4755,
    content: '#!/bin/sh\n',
    xattrs: { 'security.capability': CAPABILITY },
  },
  { type: 'file', path: 'bin/empty', mode: 0o600 },
  { type: 'file', path: 'bin/one-block', content: { size: BLOCK_SIZE, seed: 'one' } },
  { type: 'file', path: 'bin/big', mode: 0o755, content: { size: 3 * BLOCK_SIZE + 17, seed: 'big' } },
  { type: 'file', path: 'bin/zeros', content: Buffer.alloc(2 * BLOCK_SIZE + 5) },
  { type: 'hardlink', path: 'bin/big2', target: 'bin/big' },
  { type: 'hardlink', path: 'bin/big3', target: 'bin/big2' },
  { type: 'symlink', path: 'bin/sh', target: '/bin/busybox' },
  { type: 'symlink', path: 'bin/long', target: `../${'t'.repeat(200)}` },
  { type: 'dir', path: 'etc', mode: 0o750, gid: 42, xattrs: { 'user.dir': BINARY } },
  {
    type: 'file',
    path: 'etc/binary',
    mode: 0o640,
    uid: 1000,
    gid: 1001,
    uname: 'u',
    gname: 'g',
    mtime: 1_234_567_890,
    content: BINARY,
    xattrs: { 'user.bin': BINARY, 'trusted.t': 'x', 'user.empty': '' },
  },
  { type: 'file', path: 'etc/bigid', uid: 3_000_000, gid: 4_000_000, mtime: 9_000_000_000, content: 'x' },
  { type: 'file', path: 'etc/ünïcödé', content: 'utf-8 ✓' },
  { type: 'whiteout', path: 'etc/deleted' },
  { type: 'dir', path: 'dev' },
  { type: 'char', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
  { type: 'block', path: 'dev/loop9', mode: 0o660, major: 7, minor: 9 },
  { type: 'char', path: 'dev/big', major: 511, minor: 1_000_000 },
  { type: 'fifo', path: 'dev/fifo', mode: 0o600 },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'dir', path: 'var' },
  { type: 'dir', path: 'var/cache', mode: 0o700 },
  { type: 'opaque', path: 'var/cache' },
  { type: 'file', path: 'var/cache/kept', content: { size: 1000, seed: 'kept' } },
  { type: 'dir', path: 'usr' },
  { type: 'dir', path: `usr/${'d'.repeat(70)}` },
  { type: 'dir', path: LONG_DIR, mode: 0o711 },
  { type: 'file', path: `${LONG_DIR}/file-with-a-long-name`, content: 'deep', xattrs: { 'user.deep': 'y' } },
  {
    type: 'hardlink',
    path: `${LONG_DIR}/hard-with-a-long-name`,
    target: `${LONG_DIR}/file-with-a-long-name`,
  },
  { type: 'file', path: 'last', content: { size: BLOCK_SIZE - 1, seed: 'last' } },
];
