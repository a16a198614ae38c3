import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { diffTrees, gnuTarExtract, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { buildImage, directoryEntries } from '../src/index.js';

const run = promisify(execFile);

/** A real tree with every kind of object, made as root with the usual CLIs. */
async function makeTree(root: string): Promise<void> {
  const longDir = join(root, 'usr', 'l'.repeat(90), 'm'.repeat(90));
  await mkdir(longDir, { recursive: true });
  await mkdir(join(root, 'dev'));
  await mkdir(join(root, 'etc/opaque'), { recursive: true });
  await writeFile(join(root, 'usr/bin'), '#!/bin/sh\n');
  await writeFile(join(longDir, 'n'.repeat(120)), 'deep');
  await link(join(longDir, 'n'.repeat(120)), join(root, 'etc/hard-to-long'));
  await link(join(root, 'usr/bin'), join(root, 'etc/hard-a'));
  await link(join(root, 'usr/bin'), join(root, 'dev/hard-b'));
  await symlink('../usr/bin', join(root, 'etc/link'));
  await symlink(`/${'s'.repeat(200)}`, join(root, 'etc/dangling-long'));
  await writeFile(join(root, 'etc/.wh.removed'), '');
  await writeFile(join(root, 'etc/opaque/.wh..wh..opq'), '');
  await run('mknod', ['-m', '0620', join(root, 'dev/tty0'), 'c', '4', '0']);
  await run('mknod', [join(root, 'dev/nvme'), 'b', '259', '300000']);
  await run('mkfifo', ['-m', '0600', join(root, 'dev/fifo')]);
  await run('chown', ['-h', '4242:99', join(root, 'etc/link')]);
  await run('chown', ['1000:2000', join(root, 'usr/bin')]);
  await run('chmod', ['6755', join(root, 'usr/bin')]);
  await run('chmod', ['1777', join(root, 'etc/opaque')]);
  await run('setfattr', [
    '-n',
    'security.capability',
    '-v',
    '0sAQAAAgAEIAAAAAAAAAAAAAAAAAA=',
    join(root, 'usr/bin'),
  ]);
  await run('setfattr', ['-n', 'user.bin', '-v', '0x00ff80fe', join(root, 'usr/bin')]);
  await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(root, 'etc/opaque')]);
  await run('setfattr', ['-h', '-n', 'trusted.link', '-v', 'l', join(root, 'etc/link')]);
  await run('setfattr', ['-n', 'trusted.dev', '-v', '0x01', join(root, 'dev/tty0')]);
  await utimes(join(root, 'etc/.wh.removed'), 1_111_111_111, 1_111_111_111);
  // Directory mtimes last: creating entries above changed them.
  await utimes(join(root, 'etc'), 1_222_222_222, 1_222_222_222);
}

test('fromDirectory keeps every object of a real tree (GNU tar extraction equals the source)', async (t) => {
  const dir = await tempDirFor(t);
  const src = join(dir.path, 'src');
  await makeTree(src);
  const built = await buildImage(
    { layers: [{ fromDirectory: src, compression: 'gzip' }] },
    { layoutDir: join(dir.path, 'layout') },
  );
  const layer = built.layers[0]!;
  const out = join(dir.path, 'out');
  await gnuTarExtract(join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice(7)), out, {
    compression: 'gzip',
  });
  const source = await snapshotTree(src);
  assert.deepEqual(diffTrees(source, await snapshotTree(out)), []);
  // The comparison is not vacuous: the tree holds what we made.
  assert.equal(source.get('dev/hard-b')?.hardlinkGroup, 'dev/hard-b');
  assert.equal(source.get('usr/bin')?.hardlinkGroup, 'dev/hard-b');
  assert.equal(source.get('usr/bin')?.mode, 0o6755);
  assert.equal(source.get('dev/nvme')?.rdevMinor, 300000);
  assert.equal(source.get('etc/link')?.uid, 4242);

  // Reproducible: the same tree builds the same blob.
  const again = await buildImage(
    { layers: [{ fromDirectory: src, compression: 'gzip' }] },
    { layoutDir: join(dir.path, 'layout2') },
  );
  assert.equal(again.layers[0]?.descriptor.digest, layer.descriptor.digest);
});

test('directoryEntries lists entries sorted, parents first, hardlinks after their first path', async (t) => {
  const dir = await tempDirFor(t);
  await makeTree(dir.path);
  const entries = await directoryEntries(dir.path);
  const paths = entries.map((e) => e.path);
  assert.deepEqual(paths, [...paths].sort());
  for (const [i, entry] of entries.entries()) {
    const parent = entry.path.slice(0, entry.path.lastIndexOf('/'));
    if (parent) assert.ok(paths.indexOf(parent) < i, `${parent} before ${entry.path}`);
    if (entry.type === 'hardlink') assert.ok(paths.indexOf(entry.target) < i);
  }
  assert.deepEqual(
    entries.filter((e) => e.type === 'hardlink').map((e) => e.path),
    ['etc/hard-a', 'usr/bin', `usr/${'l'.repeat(90)}/${'m'.repeat(90)}/${'n'.repeat(120)}`],
  );
});

test('fromDirectory refuses sockets', async (t) => {
  const dir = await tempDirFor(t);
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(dir.path, 'sock'), resolve));
  t.after(() => server.close());
  await assert.rejects(directoryEntries(dir.path), { code: 'ERR_INVALID_ARGUMENT', message: /sockets/ });
});
