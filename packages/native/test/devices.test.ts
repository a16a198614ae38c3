import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, lstatSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDirFor } from '@gcfs/testkit';
import { major, makedev, minor, mknod, mknodAsync } from '../src/index.js';

const { S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT } = constants;

/** GNU stat's view: type, decimal major and minor, octal permissions. */
function statCli(path: string): string {
  return execFileSync('stat', ['-c', '%F %Hr %Lr %a', path], { encoding: 'utf8' }).trim();
}

test('mknod creates char and block devices, fifos and OCI whiteouts that lstat and stat(1) agree on', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-native-')).path;
  const cases = [
    { name: 'null', mode: S_IFCHR | 0o600, major: 1, minor: 3, cli: 'character special file 1 3 600' },
    { name: 'loop9', mode: S_IFBLK | 0o640, major: 7, minor: 9, cli: 'block special file 7 9 640' },
    { name: 'fifo', mode: S_IFIFO | 0o644, major: 0, minor: 0, cli: 'fifo 0 0 644' },
    { name: '.wh.gone', mode: S_IFCHR, major: 0, minor: 0, cli: 'character special file 0 0 0' },
    // Minor past 8 bits: glibc's split encoding, not a plain shift (Linux allows 12-bit majors).
    {
      name: 'big',
      mode: S_IFCHR | 0o600,
      major: 259,
      minor: 70000,
      cli: 'character special file 259 70000 600',
    },
  ];
  for (const c of cases) {
    const path = join(dir, c.name);
    mknod(path, c.mode, c.major, c.minor);
    const st = lstatSync(path, { bigint: true });
    assert.equal(Number(st.mode & BigInt(S_IFMT)), c.mode & S_IFMT, c.name);
    assert.equal(Number(st.mode & 0o7777n), c.mode & 0o7777, c.name);
    assert.equal(major(st.rdev), c.major, c.name);
    assert.equal(minor(st.rdev), c.minor, c.name);
    assert.equal(minor(Number(st.rdev)), c.minor, c.name);
    if (c.mode & (S_IFCHR | S_IFBLK)) assert.equal(st.rdev, makedev(c.major, c.minor), c.name);
    assert.equal(statCli(path), c.cli);
  }
});

test('mknodAsync runs on the thread pool with the same result', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-native-')).path;
  await Promise.all(
    Array.from({ length: 16 }, (_, i) => mknodAsync(join(dir, `tty${i}`), S_IFCHR | 0o600, 4, i)),
  );
  for (let i = 0; i < 16; i++)
    assert.equal(statCli(join(dir, `tty${i}`)), `character special file 4 ${i} 600`);
});

test('mknod failures throw fs-style errors with code, errno, syscall and path', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-native-')).path;
  const path = join(dir, 'dev');
  mknod(path, S_IFCHR | 0o600, 1, 3);
  assert.throws(() => mknod(path, S_IFCHR | 0o600, 1, 3), {
    code: 'EEXIST',
    errno: -osConstants.errno.EEXIST,
    syscall: 'mknod',
    path,
    message: `EEXIST: file already exists, mknod '${path}'`,
  });
  const missing = join(dir, 'no', 'dev');
  await assert.rejects(mknodAsync(missing, S_IFIFO | 0o600), {
    code: 'ENOENT',
    syscall: 'mknod',
    path: missing,
  });
  // A valid dev_t the kernel refuses: its majors have 12 bits.
  assert.throws(() => mknod(join(dir, 'huge'), S_IFCHR | 0o600, 4096, 0), { code: 'EINVAL' });
  assert.throws(() => mknod(join(dir, 'reg'), constants.S_IFREG | 0o600), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => mknod(join(dir, 'neg'), S_IFCHR, -1, 0), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => mknod(`${dir}/a\0b`, S_IFIFO), { code: 'ERR_INVALID_ARGUMENT' });
});

test('makedev, major and minor follow glibc', () => {
  assert.equal(makedev(1, 3), 0x103n);
  assert.equal(makedev(0x1004, 0x11170), 0x1000_1110_0470n);
  for (const [ma, mi] of [
    [0, 0],
    [259, 65536],
    [0xffff_ffff, 0xffff_ffff],
  ] as const) {
    assert.equal(major(makedev(ma, mi)), ma);
    assert.equal(minor(makedev(ma, mi)), mi);
  }
});
