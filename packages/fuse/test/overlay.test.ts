import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { diffTrees, makeTempDir, snapshotTree, type TreeSnapshot, tempDirFor } from '@gcfs/testkit';
import { imageDirName } from '../src/index.js';
import { childSnapshot, fixture, mountFixture } from './harness.js';
import { applyLayers, compressionOf, LAYERED } from './images.js';

const run = promisify(execFile);

/** overlayfs hides its own xattrs, and deleting entries touches a reference dir's mtime. */
function comparable(snapshot: TreeSnapshot): TreeSnapshot {
  for (const node of snapshot.values()) {
    node.xattrs = Object.fromEntries(
      Object.entries(node.xattrs).filter(([name]) => !name.startsWith('trusted.overlay.')),
    );
    if (node.type === 'dir') node.mtimeSec = 0;
  }
  return snapshot;
}

test('overlayfs over images/<name>/<i> equals GNU tar applying the layers in order', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mnt } = await mountFixture(t, fx);
  const merged = await makeTempDir('gcfs-fuse-merged-');
  const images = join(mnt, 'images', imageDirName(fx.image));
  const lowers = fx.layers.map((_, i) => join(images, String(i))).reverse();
  // Registered after the mount's hook: unmounts the overlay before the FUSE mount goes.
  t.after(async () => {
    await run('umount', ['-l', merged.path]).catch(() => {});
    await merged.cleanup();
  });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, merged.path]);

  const reference = await tempDirFor(t, 'gcfs-fuse-applied-');
  const root = join(reference.path, 'root');
  await mkdir(root);
  await applyLayers(
    root,
    fx.built.layers.map((layer) => ({
      path: fx.blobPath(layer.descriptor.digest),
      compression: compressionOf(layer),
    })),
  );
  const expected = comparable(await snapshotTree(root));
  const actual = comparable(await childSnapshot(merged.path));
  assert.deepEqual(diffTrees(expected, actual), []);
  assert.ok(!actual.has('etc/binary') && !actual.has('dev') && !actual.has('var/cache'));
  assert.ok(
    actual.has('opt/only') && !actual.has('opt/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'),
  );
});
