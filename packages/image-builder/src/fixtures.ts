import type { Entry } from './spec.js';

// A fixture shared by every suite that must carry each kind of tar entry through a layer:
// the image builder's own round trips, the index, the content service, the downloader.

// VFS_CAP_REVISION_2 with the effective flag, cap_net_bind_service (bit 10) and cap_sys_admin
// (bit 21) permitted: a value the kernel accepts for security.capability.
const CAPABILITY = Buffer.from([1, 0, 0, 2, 0, 4, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const BINARY = Buffer.from([0x00, 0xff, 0x80, 0xfe, 0x0a, 0x3d, 0xc3]);
export const LONG_DIR = `opt/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_TARGET = `../${'t'.repeat(150)}`;

/** One of every entry kind, with the edge cases a layer has to carry. */
export const EVERY_ENTRY_KIND: readonly Entry[] = [
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
