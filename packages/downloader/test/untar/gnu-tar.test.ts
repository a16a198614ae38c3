import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LayerCompression } from '@gcfs/core';
import { type Entry, EVERY_ENTRY_KIND, type LongNameFormat } from '@gcfs/image-builder';
import { lgetxattr } from '@gcfs/native';
import {
  deviceNumbers,
  diffTrees,
  gnuTarCreate,
  gnuTarExtract,
  makeRealTree,
  snapshotTree,
  tempDirFor,
} from '@gcfs/testkit';
import { untarLayer } from '../../src/untar/index.js';
import { buildLayerBlobs, overlayView, untarBlob } from './helpers.js';

const CASES: Array<[LayerCompression, LongNameFormat]> = [
  ['gzip', 'pax'],
  ['zstd', 'gnu'],
  ['none', 'pax'],
  ['gzip', 'gnu'],
];

for (const [compression, longNames] of CASES) {
  test(`every entry kind untars as GNU tar extracts it, whiteouts converted (${compression}, ${longNames})`, async (t) => {
    const dir = await tempDirFor(t, 'gcfs-untar-');
    const [blob] = await buildLayerBlobs(dir.path, [EVERY_ENTRY_KIND], compression, longNames);
    const ours = join(dir.path, 'ours');
    const stats = await untarBlob(blob!, compression, ours);
    const reference = join(dir.path, 'gnu');
    await gnuTarExtract(blob!, reference, { compression });

    const tree = await snapshotTree(ours);
    assert.deepEqual(diffTrees(tree, overlayView(await snapshotTree(reference))), []);
    assert.equal(tree.size, EVERY_ENTRY_KIND.length - 1, 'every entry but the opaque marker is a path');
    assert.equal(stats.entries, EVERY_ENTRY_KIND.length);
    assert.equal(stats.paths, tree.size);
    assert.equal(stats.files, EVERY_ENTRY_KIND.filter((e) => e.type === 'file').length);
    assert.equal(stats.bytes, 1_000_003 + 20 + 3 + 7 + Buffer.byteLength('utf-8 ✓') + 1 + 4);

    // What overlayfs looks at, checked directly rather than only against the reference.
    const whiteout = await lstat(join(ours, 'etc/deleted'), { bigint: true });
    assert.ok(whiteout.isCharacterDevice());
    assert.deepEqual(deviceNumbers(whiteout.rdev), { major: 0, minor: 0 });
    assert.equal(whiteout.mode & 0o7777n, 0n);
    assert.equal(lgetxattr(join(ours, 'var/cache'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal((await lstat(join(ours, 'bin/tool'))).mode & 0o7777, 0o4755);
    assert.equal(lgetxattr(join(ours, 'bin/tool'), 'security.capability')?.length, 20);
    assert.equal((await lstat(join(ours, 'bin/hard'))).ino, (await lstat(join(ours, 'bin/tool'))).ino);
  });
}

/** Later entries of one layer replace earlier ones, as GNU tar extracts them. */
const REPLACEMENTS: Entry[] = [
  { type: 'file', path: 'a', content: 'first', mode: 0o600 },
  { type: 'file', path: 'a', content: 'second, longer', mode: 0o644, uid: 7 },
  // GNU tar delays absolute symlinks (a placeholder file first): a relative one replaces alike.
  { type: 'symlink', path: 's', target: 'nowhere' },
  { type: 'file', path: 's', content: 'a file now' },
  { type: 'dir', path: 'd', mode: 0o700, xattrs: { 'user.old': 'x', 'user.kept': '1' } },
  { type: 'file', path: 'd/f', content: 'child' },
  { type: 'dir', path: 'd', mode: 0o751, gid: 3, mtime: 1_600_000_000, xattrs: { 'user.kept': '2' } },
  { type: 'fifo', path: 'p' },
  { type: 'symlink', path: 'p', target: 'a' },
  { type: 'whiteout', path: 'gone' },
  { type: 'file', path: 'gone', content: 'back in this layer' },
  { type: 'whiteout', path: 'w' },
  { type: 'dir', path: 'w' },
  { type: 'file', path: 'w/inside', content: 'i' },
];

test('entries replaced within a layer end as GNU tar leaves them', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-untar-');
  const [blob] = await buildLayerBlobs(dir.path, [REPLACEMENTS], 'none');
  const ours = join(dir.path, 'ours');
  await untarBlob(blob!, 'none', ours, { fsync: true });
  const reference = join(dir.path, 'gnu');
  await gnuTarExtract(blob!, reference);
  const tree = await snapshotTree(ours);
  // GNU tar keeps the xattrs of the first `d`; we keep the index's view: the last entry's only.
  assert.deepEqual(diffTrees(tree, overlayView(await snapshotTree(reference))), [
    'd: xattrs {"user.kept":"Mg=="} != {"user.kept":"Mg==","user.old":"eA=="}',
  ]);
  assert.equal(await readFile(join(ours, 'a'), 'utf8'), 'second, longer');
  assert.deepEqual(Object.keys(tree.get('d')!.xattrs), ['user.kept'], 'a stale xattr of d was removed');
  assert.equal(tree.get('gone')?.type, 'file');
  assert.equal(tree.get('w')?.xattrs['trusted.overlay.opaque'], Buffer.from('y').toString('base64'));
});

test('a tar GNU tar wrote from a real tree (posix and gnu formats) untars equal, mtimes to the microsecond', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-untar-');
  const src = join(dir.path, 'src');
  await makeRealTree(src);

  for (const format of ['posix', 'gnu'] as const) {
    const tar = join(dir.path, `${format}.tar`);
    await gnuTarCreate(src, tar, format);
    const ours = join(dir.path, `ours-${format}`);
    const reference = join(dir.path, `gnu-${format}`);
    await untarLayer(createReadStream(tar), ours);
    await gnuTarExtract(tar, reference);
    assert.deepEqual(diffTrees(await snapshotTree(ours), await snapshotTree(reference)), [], format);
    // The root entry `./` gives the untar dir its metadata, as GNU tar's -p does.
    const [root, refRoot] = await Promise.all([lstat(ours), lstat(reference)]);
    assert.equal(root.mode, refRoot.mode, format);
    if (format === 'posix') {
      const ns = async (path: string) => (await lstat(join(ours, path), { bigint: true })).mtimeNs;
      const near = async (path: string, expected: bigint) => {
        const error = (await ns(path)) - expected;
        assert.ok(error > -1000n && error < 1000n, `${path}: ${error} ns off`);
      };
      await near('soft', 1_600_000_000_123_456_789n);
      await near('empty', 1_500_000_000_999_999_999n);
      assert.equal(await ns('sub'), 1_400_000_000_500_000_000n);
    }
  }
});

test('whiteouts are made even when devices are off', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-untar-');
  const layer: Entry[] = [
    { type: 'whiteout', path: 'gone' },
    { type: 'fifo', path: 'fifo' },
  ];
  const [blob] = await buildLayerBlobs(dir.path, [layer], 'gzip');
  const ours = join(dir.path, 'ours');
  await untarBlob(blob!, 'gzip', ours, { allowDevices: false });
  const tree = await snapshotTree(ours);
  assert.equal(tree.get('gone')?.type, 'char');
  assert.equal(tree.get('fifo')?.type, 'fifo');
});
