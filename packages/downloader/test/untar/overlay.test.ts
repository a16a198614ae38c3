import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Entry } from '@gcfs/image-builder';
import { diffTrees, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { buildLayerBlobs, run, untarBlob } from './helpers.js';

// Three layers that replace, delete (files and directories), make a directory opaque and turn
// files into directories and back. Each layer lists the directories it touches, as image
// builders do, so that directory times are the same whichever way the layers are applied.
const L0: Entry[] = [
  { type: 'dir', path: 'etc', mtime: 1_000_000_000 },
  { type: 'file', path: 'etc/conf', content: 'v0' },
  { type: 'file', path: 'etc/keep', content: 'keep', mode: 0o600, uid: 12 },
  { type: 'file', path: 'etc/gone', content: 'to delete' },
  { type: 'dir', path: 'usr' },
  { type: 'dir', path: 'usr/bin' },
  { type: 'file', path: 'usr/bin/tool', mode: 0o4755, content: 'tool', xattrs: { 'user.x': 'y' } },
  { type: 'hardlink', path: 'usr/bin/tool2', target: 'usr/bin/tool' },
  { type: 'dir', path: 'var' },
  { type: 'dir', path: 'var/cache', mode: 0o700 },
  { type: 'file', path: 'var/cache/x', content: 'x' },
  { type: 'dir', path: 'var/cache/sub' },
  { type: 'file', path: 'var/cache/sub/z', content: 'z' },
  { type: 'dir', path: 'opt' },
  { type: 'dir', path: 'opt/app' },
  { type: 'file', path: 'opt/app/f', content: 'f' },
  { type: 'file', path: 'a', content: 'file a' },
  { type: 'file', path: 'b', content: 'file b' },
  { type: 'symlink', path: 'link', target: 'a' },
  { type: 'dir', path: 'dev' },
  { type: 'char', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
  { type: 'fifo', path: 'dev/fifo' },
  { type: 'dir', path: 'was-dir' },
  { type: 'file', path: 'was-dir/c', content: 'c' },
];
const L1: Entry[] = [
  { type: 'dir', path: 'etc', mode: 0o750, mtime: 1_100_000_000 },
  { type: 'file', path: 'etc/conf', content: 'v1' },
  { type: 'whiteout', path: 'etc/gone' },
  { type: 'whiteout', path: 'b' },
  { type: 'dir', path: 'opt' },
  { type: 'whiteout', path: 'opt/app' },
  { type: 'dir', path: 'var' },
  { type: 'dir', path: 'var/cache', mode: 0o711 },
  { type: 'opaque', path: 'var/cache' },
  { type: 'file', path: 'var/cache/new', content: 'n' },
  { type: 'dir', path: 'usr' },
  { type: 'dir', path: 'usr/bin' },
  { type: 'file', path: 'usr/bin/new', content: 'new' },
  { type: 'file', path: 'was-dir', content: 'a file over a lower directory' },
];
const L2: Entry[] = [
  { type: 'dir', path: 'usr' },
  { type: 'dir', path: 'usr/bin' },
  { type: 'whiteout', path: 'usr/bin/new' },
  { type: 'dir', path: 'b', mode: 0o705 },
  { type: 'file', path: 'b/inside', content: 'b is a directory now' },
  { type: 'symlink', path: 'a', target: 'etc/conf' },
  // A whiteout and a directory of the same path in one layer: the lower etc is replaced.
  { type: 'whiteout', path: 'etc' },
  { type: 'dir', path: 'etc', mode: 0o755, mtime: 1_200_000_000 },
  { type: 'file', path: 'etc/only', content: 'only' },
  { type: 'dir', path: 'opt' },
  { type: 'dir', path: 'opt/app' },
  { type: 'file', path: 'opt/app/g', content: 'g' },
];

const GNU_TAR = ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '-xpf'];

/**
 * The OCI way of applying a layer over `root` with GNU tar: whiteouts delete lower paths,
 * opaque markers empty lower directories, an entry whose kind (directory or not) differs
 * from the lower path replaces it; then the layer is extracted over `root`, markers left out.
 */
async function applyLayer(root: string, blob: string, staging: string): Promise<void> {
  await run('tar', [...GNU_TAR, blob, '-C', staging]);
  const paths = [...(await snapshotTree(staging, { hashContent: false }))];
  const lower = async (path: string) => lstat(join(root, path)).catch(() => undefined);
  for (const [path, node] of paths) {
    const below = await lower(path);
    if (below && below.isDirectory() !== (node.type === 'dir'))
      await rm(join(root, path), { recursive: true });
  }
  for (const [path] of paths) {
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (name === '.wh..wh..opq') {
      if ((await lower(dir))?.isDirectory()) {
        for (const child of await readdir(join(root, dir)))
          await rm(join(root, dir, child), { recursive: true });
      }
    } else if (name.startsWith('.wh.')) {
      await rm(join(root, dir, name.slice('.wh.'.length)), { recursive: true, force: true });
    }
  }
  await run('tar', ['--exclude=.wh.*', ...GNU_TAR, blob, '-C', root]);
}

test('an overlay mount of untarred layers shows what GNU tar applying them in order gives', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-untar-overlay-');
  const blobs = await buildLayerBlobs(dir.path, [L0, L1, L2], 'gzip');
  const lowers: string[] = [];
  const reference = join(dir.path, 'reference');
  await mkdir(reference);
  for (const [i, blob] of blobs.entries()) {
    const lower = join(dir.path, `L${i}`);
    await untarBlob(blob, 'gzip', lower);
    lowers.push(lower);
    const staging = join(dir.path, `staging${i}`);
    await mkdir(staging);
    await applyLayer(reference, blob, staging);
  }

  const merged = join(dir.path, 'merged');
  await mkdir(merged);
  const lowerdir = [...lowers].reverse().join(':');
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowerdir}`, merged]);
  // Unmounted here rather than in t.after: after-hooks run in order, the temp dir's first.
  try {
    const view = await snapshotTree(merged);
    assert.deepEqual(diffTrees(view, await snapshotTree(reference)), []);
    // The cases the layers are about, checked directly too.
    assert.deepEqual(
      [...view.keys()].filter((p) => p.startsWith('etc')),
      ['etc', 'etc/only'],
    );
    assert.deepEqual(
      [...view.keys()].filter((p) => p.startsWith('var/cache/')),
      ['var/cache/new'],
    );
    assert.deepEqual(
      [...view.keys()].filter((p) => p.startsWith('opt/app/')),
      ['opt/app/g'],
    );
    assert.equal(view.get('usr/bin/new'), undefined);
    assert.equal(view.get('b')?.type, 'dir');
    assert.equal(view.get('was-dir')?.type, 'file');
    assert.equal(view.get('a')?.linkTarget, 'etc/conf');
    assert.equal(await readFile(join(merged, 'usr/bin/tool2'), 'utf8'), 'tool');
  } finally {
    await run('umount', [merged]).catch(() => run('umount', ['-l', merged]));
  }
});
