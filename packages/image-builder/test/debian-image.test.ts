import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { gnuTarExtract, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { buildImage, overlayUpperToLayerDir } from '../src/index.js';

const run = promisify(execFile);

/** What an overlayfs upper dir holds after a package install removed and replaced things. */
async function makeUpper(upper: string): Promise<void> {
  await mkdir(join(upper, 'etc/opaque/sub'), { recursive: true });
  await mkdir(join(upper, 'usr/share/doc'), { recursive: true });
  await writeFile(join(upper, 'etc/opaque/sub/new.conf'), 'new\n');
  await writeFile(join(upper, 'usr/share/doc/kept'), 'kept\n');
  // Whiteouts: char device 0:0 where the lower file or dir was deleted.
  await run('mknod', [join(upper, 'etc/removed.conf'), 'c', '0', '0']);
  await run('mknod', [join(upper, 'usr/share/doc/gone-dir'), 'c', '0', '0']);
  // A real device node is not a whiteout and stays.
  await run('mknod', [join(upper, 'etc/tty9'), 'c', '4', '9']);
  await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(upper, 'etc/opaque')]);
  // Overlay bookkeeping that must not leak into the layer; other xattrs must.
  await run('setfattr', ['-n', 'trusted.overlay.impure', '-v', 'y', join(upper, 'usr/share/doc')]);
  await run('setfattr', ['-n', 'user.keep', '-v', 'v', join(upper, 'usr/share/doc')]);
}

test('overlayUpperToLayerDir turns whiteouts and opaque dirs into OCI entries', async (t) => {
  const dir = await tempDirFor(t);
  const upper = join(dir.path, 'upper');
  await makeUpper(upper);
  // A daemon's socket left behind by an install: removed, a layer cannot hold it.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(upper, 'etc/control.sock'), resolve));
  t.after(() => server.close());

  const converted = await overlayUpperToLayerDir(upper);
  assert.deepEqual(converted, { whiteouts: 2, opaques: 1 });

  const tree = await snapshotTree(upper);
  assert.deepEqual(
    [...tree.keys()],
    [
      'etc',
      'etc/.wh.removed.conf',
      'etc/opaque',
      'etc/opaque/.wh..wh..opq',
      'etc/opaque/sub',
      'etc/opaque/sub/new.conf',
      'etc/tty9',
      'usr',
      'usr/share',
      'usr/share/doc',
      'usr/share/doc/.wh.gone-dir',
      'usr/share/doc/kept',
    ],
  );
  assert.equal(tree.get('etc/.wh.removed.conf')?.type, 'file');
  assert.equal(tree.get('etc/.wh.removed.conf')?.size, 0);
  assert.equal(tree.get('etc/opaque/.wh..wh..opq')?.type, 'file');
  assert.deepEqual(tree.get('etc/opaque')?.xattrs, {});
  assert.deepEqual(tree.get('usr/share/doc')?.xattrs, { 'user.keep': Buffer.from('v').toString('base64') });
  assert.equal(tree.get('etc/tty9')?.type, 'char');
  assert.equal(tree.get('etc/tty9')?.rdevMinor, 9);

  // The converted dir packs as a layer whose tar carries the OCI whiteout names.
  const built = await buildImage(
    { layers: [{ compression: 'gzip', fromDirectory: upper }] },
    { layoutDir: join(dir.path, 'layout') },
  );
  const out = join(dir.path, 'out');
  const digest = built.layers[0]!.descriptor.digest.slice('sha256:'.length);
  await gnuTarExtract(join(built.layoutDir, 'blobs/sha256', digest), out, { compression: 'gzip' });
  const extracted = await snapshotTree(out);
  assert.equal(extracted.get('etc/opaque/.wh..wh..opq')?.type, 'file');
  assert.equal(extracted.get('usr/share/doc/.wh.gone-dir')?.type, 'file');
  assert.equal(extracted.has('etc/removed.conf'), false);
});

test('overlayUpperToLayerDir leaves a plain tree as it is', async (t) => {
  const dir = await tempDirFor(t);
  const upper = join(dir.path, 'upper');
  await mkdir(join(upper, 'a/b'), { recursive: true });
  await writeFile(join(upper, 'a/b/file'), 'x');
  const before = await snapshotTree(upper);
  assert.deepEqual(await overlayUpperToLayerDir(upper), { whiteouts: 0, opaques: 0 });
  assert.deepEqual(await snapshotTree(upper), before);
});

test('overlayUpperToLayerDir on the upper dir of a real overlay mount', async (t) => {
  const dir = await tempDirFor(t);
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(dir.path, n)) as [
    string,
    string,
    string,
    string,
  ];
  await mkdir(join(lower, 'etc/replaced'), { recursive: true });
  await writeFile(join(lower, 'etc/replaced/old'), 'old');
  await writeFile(join(lower, 'etc/deleted'), 'bye');
  for (const d of [upper, work, merged]) await mkdir(d);
  const opts = `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off,index=off`;
  await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, merged]);
  try {
    // What dpkg does: delete a file, replace a directory by a new one.
    await rm(join(merged, 'etc/deleted'));
    await rm(join(merged, 'etc/replaced'), { recursive: true });
    await mkdir(join(merged, 'etc/replaced'));
    await writeFile(join(merged, 'etc/replaced/new'), 'new');
  } finally {
    await run('umount', [merged]);
  }
  assert.deepEqual(await overlayUpperToLayerDir(upper), { whiteouts: 1, opaques: 1 });
  const tree = await snapshotTree(upper);
  assert.deepEqual(
    [...tree.keys()],
    ['etc', 'etc/.wh.deleted', 'etc/replaced', 'etc/replaced/.wh..wh..opq', 'etc/replaced/new'],
  );
  for (const node of tree.values()) assert.deepEqual(Object.keys(node.xattrs), []);
});
