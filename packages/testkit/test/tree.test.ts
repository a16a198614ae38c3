import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { diffTrees, gnuTarExtract, readXattrs, snapshotTree, tempDirFor } from '../src/index.js';

const run = promisify(execFile);

/** A small tree with one of every kind of object, made with the real CLIs. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'dir/sub'), { recursive: true });
  await writeFile(join(root, 'dir/file'), 'hello');
  await link(join(root, 'dir/file'), join(root, 'dir/sub/hard'));
  await symlink('../file', join(root, 'dir/sub/link'));
  await writeFile(join(root, 'weird\nname \\ é'), '');
  await run('mknod', [join(root, 'dir/null'), 'c', '1', '3']);
  await run('mknod', [join(root, 'dir/loop'), 'b', '259', '70000']);
  await run('mkfifo', [join(root, 'dir/fifo')]);
  await run('setfattr', ['-n', 'user.bin', '-v', '0x00ff800a3d', join(root, 'dir/file')]);
  await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(root, 'dir/sub')]);
  await run('setfattr', ['-n', 'user.empty', join(root, 'weird\nname \\ é')]);
  // chown after chmod would clear the setuid bit.
  await run('chown', ['1234:5678', join(root, 'dir/file')]);
  await run('chmod', ['4750', join(root, 'dir/file')]);
  await utimes(join(root, 'dir/file'), 1_000_000_000, 1_000_000_000);
}

test('snapshotTree describes every kind of object', async (t) => {
  const dir = await tempDirFor(t);
  await makeTree(dir.path);
  const tree = await snapshotTree(dir.path);
  assert.deepEqual(
    [...tree.keys()],
    [
      'dir',
      'dir/fifo',
      'dir/file',
      'dir/loop',
      'dir/null',
      'dir/sub',
      'dir/sub/hard',
      'dir/sub/link',
      'weird\nname \\ é',
    ],
  );
  assert.deepEqual(tree.get('dir/file'), {
    type: 'file',
    mode: 0o4750,
    uid: 1234,
    gid: 5678,
    mtimeSec: 1_000_000_000,
    size: 5,
    sha256: createHash('sha256').update('hello').digest('hex'),
    xattrs: { 'user.bin': Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d]).toString('base64') },
    hardlinkGroup: 'dir/file',
  });
  assert.equal(tree.get('dir/sub/hard')?.hardlinkGroup, 'dir/file');
  assert.equal(tree.get('dir/sub/link')?.linkTarget, '../file');
  assert.deepEqual(
    [tree.get('dir/loop')?.type, tree.get('dir/loop')?.rdevMajor, tree.get('dir/loop')?.rdevMinor],
    ['block', 259, 70000],
  );
  assert.equal(tree.get('dir/fifo')?.type, 'fifo');
  assert.deepEqual(tree.get('dir/sub')?.xattrs, { 'trusted.overlay.opaque': 'eQ==' });
  assert.deepEqual(tree.get('weird\nname \\ é')?.xattrs, { 'user.empty': '' });
});

test('readXattrs returns binary-exact values and omits paths without xattrs', async (t) => {
  const dir = await tempDirFor(t);
  await makeTree(dir.path);
  const file = join(dir.path, 'dir/file');
  const plain = join(dir.path, 'dir/sub/link');
  const xattrs = await readXattrs([file, plain]);
  assert.deepEqual(xattrs.get(file), { 'user.bin': Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d]) });
  assert.equal(xattrs.has(plain), false);
  await assert.rejects(readXattrs([join(dir.path, 'missing')]), /getfattr failed/);
});

test('diffTrees reports each difference and honours ignores', async (t) => {
  const dir = await tempDirFor(t);
  const a = join(dir.path, 'a');
  const b = join(dir.path, 'b');
  await makeTree(a);
  // This cp keeps neither owners, hardlinks nor xattrs: exactly what the diff must say.
  await run('cp', ['-r', '--preserve=timestamps', a, b]);
  const differences = diffTrees(await snapshotTree(a), await snapshotTree(b), {
    ignoreFields: ['mtimeSec'],
  });
  assert.ok(differences.includes('dir/file: uid 1234 != 0'), differences.join('\n'));
  assert.ok(differences.some((d) => d.startsWith('dir/file: xattrs ')));
  assert.ok(differences.some((d) => d.startsWith('dir/sub/hard: hardlinkGroup "dir/file" != undefined')));

  await writeFile(join(b, 'only-b'), '');
  const after = diffTrees(await snapshotTree(a), await snapshotTree(b), {
    ignoreFields: ['mtimeSec', 'uid', 'gid', 'xattrs', 'hardlinkGroup', 'mode'],
    ignorePaths: /^dir\//,
  });
  assert.deepEqual(after, ['only-b: only in second tree (file)']);
});

test('gnuTarExtract restores what GNU tar archived, and reports failures', async (t) => {
  const dir = await tempDirFor(t);
  const src = join(dir.path, 'src');
  await mkdir(src);
  await makeTree(src);
  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    const archive = join(dir.path, `a-${compression}.tar`);
    const flag = { none: [], gzip: ['--gzip'], zstd: ['--zstd'] }[compression];
    await run('tar', [...flag, '--xattrs', '--xattrs-include=*', '-cpf', archive, '-C', src, '.']);
    const dest = join(dir.path, `out-${compression}`);
    await gnuTarExtract(archive, dest, { compression });
    assert.deepEqual(diffTrees(await snapshotTree(src), await snapshotTree(dest)), []);
  }
  await writeFile(join(dir.path, 'bad.tar'), 'not a tar');
  await assert.rejects(gnuTarExtract(join(dir.path, 'bad.tar'), join(dir.path, 'bad')), /GNU tar failed/);
});
