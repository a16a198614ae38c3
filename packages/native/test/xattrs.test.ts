import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDirFor } from '@gcfs/testkit';
import {
  lgetxattr,
  lgetxattrAsync,
  llistxattr,
  llistxattrAsync,
  lremovexattr,
  lremovexattrAsync,
  lsetxattr,
  lsetxattrAsync,
} from '../src/index.js';

/** getfattr's view of `path` itself: name -> hex value. */
function getfattr(path: string): Map<string, string> {
  const out = execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', path], {
    encoding: 'utf8',
  });
  const found = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) found.set(m[1]!, m[2]!);
  }
  return found;
}

async function tree(t: Parameters<typeof tempDirFor>[0]) {
  const dir = (await tempDirFor(t, 'gcfs-native-')).path;
  const file = join(dir, 'file');
  const sub = join(dir, 'sub');
  const link = join(dir, 'link');
  writeFileSync(file, 'content');
  mkdirSync(sub);
  symlinkSync('file', link);
  return { dir, file, sub, link };
}

// A file capability (VFS_CAP_REVISION_2, cap_net_bind_service): binary, with 0x00 bytes.
const CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');
const BINARY = Buffer.from([0x00, 0xff, 0x00, 0x80, 0x7f, 0xff, 0x00]);

test('xattrs on files and dirs: binary values survive and getfattr agrees', async (t) => {
  const { file, sub } = await tree(t);
  lsetxattr(file, 'security.capability', CAPABILITY);
  lsetxattr(file, 'user.binary', BINARY);
  lsetxattr(file, 'user.empty', Buffer.alloc(0));
  lsetxattr(sub, 'trusted.overlay.opaque', Buffer.from('y'));

  assert.deepEqual(lgetxattr(file, 'security.capability'), CAPABILITY);
  assert.deepEqual(lgetxattr(file, 'user.binary'), BINARY);
  assert.deepEqual(lgetxattr(file, 'user.empty'), Buffer.alloc(0));
  assert.deepEqual(lgetxattr(sub, 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.equal(lgetxattr(file, 'user.absent'), undefined);

  assert.deepEqual(llistxattr(file).sort(), ['security.capability', 'user.binary', 'user.empty']);
  assert.deepEqual(llistxattr(sub), ['trusted.overlay.opaque']);
  const cli = getfattr(file);
  assert.equal(cli.get('security.capability'), CAPABILITY.toString('hex'));
  assert.equal(cli.get('user.binary'), BINARY.toString('hex'));
  assert.equal(getfattr(sub).get('trusted.overlay.opaque'), '79');

  const big = Buffer.alloc(3000, 0xab);
  lsetxattr(file, 'user.binary', big);
  assert.deepEqual(lgetxattr(file, 'user.binary'), big);

  lremovexattr(file, 'user.binary');
  assert.equal(lgetxattr(file, 'user.binary'), undefined);
  assert.equal(getfattr(file).has('user.binary'), false);
  assert.deepEqual(llistxattr(sub), ['trusted.overlay.opaque']);
});

test('on a symlink the link itself is changed: trusted.* works, user.* is refused with EPERM', async (t) => {
  const { file, link } = await tree(t);
  assert.deepEqual(llistxattr(link), []);
  lsetxattr(link, 'trusted.gcfs.test', BINARY);
  assert.deepEqual(lgetxattr(link, 'trusted.gcfs.test'), BINARY);
  assert.equal(lgetxattr(file, 'trusted.gcfs.test'), undefined);
  assert.deepEqual(llistxattr(file), []);
  assert.equal(getfattr(link).get('trusted.gcfs.test'), BINARY.toString('hex'));

  assert.throws(() => lsetxattr(link, 'user.x', Buffer.from('1')), {
    code: 'EPERM',
    syscall: 'lsetxattr',
    path: link,
  });
  assert.equal(lgetxattr(file, 'user.x'), undefined);
  lremovexattr(link, 'trusted.gcfs.test');
  assert.deepEqual(llistxattr(link), []);
});

test('create and replace flags, and failures carry fs-style codes', async (t) => {
  const { dir, file } = await tree(t);
  lsetxattr(file, 'user.a', Buffer.from('1'), 'create');
  assert.throws(() => lsetxattr(file, 'user.a', Buffer.from('2'), 'create'), { code: 'EEXIST' });
  assert.throws(() => lsetxattr(file, 'user.b', Buffer.from('2'), 'replace'), {
    code: 'ENODATA',
    syscall: 'lsetxattr',
  });
  lsetxattr(file, 'user.a', Buffer.from('3'), 'replace');
  assert.deepEqual(lgetxattr(file, 'user.a'), Buffer.from('3'));

  const missing = join(dir, 'missing');
  for (const call of [
    () => lgetxattr(missing, 'user.a'),
    () => llistxattr(missing),
    () => lsetxattr(missing, 'user.a', Buffer.from('1')),
    () => lremovexattr(missing, 'user.a'),
  ]) {
    assert.throws(call, (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.errno, -2);
      assert.equal(err.path, missing);
      assert.match(err.message, /^ENOENT: no such file or directory, l\w+xattr '.*missing'$/);
      return true;
    });
  }
  assert.throws(() => lremovexattr(file, 'user.absent'), { code: 'ENODATA', syscall: 'lremovexattr' });
  // A name outside every namespace is not supported by the file system.
  assert.throws(() => lsetxattr(file, 'nonamespace', Buffer.from('1')), { code: 'ENOTSUP' });
  assert.throws(() => lgetxattr(file, ''), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => lsetxattr(file, 'user.a', 'text' as unknown as Buffer), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
});

test('async forms run on the thread pool and agree with the sync ones', async (t) => {
  const { dir, file, sub } = await tree(t);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => lsetxattrAsync(file, `user.n${i}`, Buffer.from([i, 0, 0xff]))),
  );
  await lsetxattrAsync(sub, 'trusted.overlay.opaque', Buffer.from('y'), 'create');
  const names = await llistxattrAsync(file);
  assert.equal(names.length, 20);
  assert.deepEqual(names.sort(), llistxattr(file).sort());
  assert.deepEqual(await lgetxattrAsync(file, 'user.n7'), Buffer.from([7, 0, 0xff]));
  assert.equal(await lgetxattrAsync(file, 'user.none'), undefined);
  await lremovexattrAsync(file, 'user.n7');
  assert.equal(lgetxattr(file, 'user.n7'), undefined);
  await assert.rejects(lsetxattrAsync(sub, 'trusted.overlay.opaque', Buffer.from('y'), 'create'), {
    code: 'EEXIST',
  });
  await assert.rejects(lgetxattrAsync(join(dir, 'missing'), 'user.a'), {
    code: 'ENOENT',
    syscall: 'lgetxattr',
  });
  await assert.rejects(lremovexattrAsync(file, 'user.n7'), { code: 'ENODATA' });
});

test('a value changed by the caller while an async set runs is not torn: the call copied it', async (t) => {
  const { file } = await tree(t);
  const value = Buffer.alloc(1024, 1);
  const pending = lsetxattrAsync(file, 'user.copy', value);
  value.fill(2);
  await pending;
  assert.deepEqual(lgetxattr(file, 'user.copy'), Buffer.alloc(1024, 1));
});
