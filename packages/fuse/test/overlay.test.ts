import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { imageDirName, layerDirName } from '@gcfs/core';
import {
  type AfterHook,
  diffTrees,
  gnuTarExtract,
  makeTempDir,
  snapshotTree,
  type TreeSnapshot,
  tempDirFor,
} from '@gcfs/testkit';
import type { ReadEvent } from '../src/index.js';
import { childSnapshot, type Fixture, fixture, mountFixture, sh } from './harness.js';
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

/** overlayfs over the image's images/<name>/<i> lower dirs, unmounted before the FUSE mount goes. */
async function overlayOf(t: AfterHook, mnt: string, fx: Fixture): Promise<string> {
  const merged = await makeTempDir('gcfs-fuse-merged-');
  const images = join(mnt, 'images', imageDirName(fx.image));
  const lowers = fx.layers.map((_, i) => join(images, String(i))).reverse();
  // Registered after the mount's hook, so it runs first.
  t.after(async () => {
    await run('umount', ['-l', merged.path]).catch(() => {});
    await merged.cleanup();
  });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, merged.path]);
  return merged.path;
}

/** GNU tar applying the image's layers in order, the OCI way. */
async function applied(t: AfterHook, fx: Fixture): Promise<string> {
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
  return root;
}

/** What LAYERED's upper layers delete, hide and replace. */
function assertMergedLayered(tree: TreeSnapshot): void {
  assert.ok(
    !tree.has('etc/binary') && !tree.has('dev') && !tree.has('var/cache') && !tree.has('etc/deleted'),
  );
  assert.ok(
    tree.has('opt/only') && !tree.has('opt/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd'),
  );
  assert.equal(tree.get('etc/seeded')?.size, 70_000);
}

test('overlayfs over images/<name>/<i> equals GNU tar applying the layers in order', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mnt } = await mountFixture(t, fx);
  const merged = await overlayOf(t, mnt, fx);
  const expected = comparable(await snapshotTree(await applied(t, fx)));
  const actual = comparable(await childSnapshot(merged));
  assert.deepEqual(diffTrees(expected, actual), []);
  assertMergedLayered(actual);
});

test('flattened/<name>/ equals an overlay mount of the image and GNU tar applying its layers; it reads local copies once switched', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mount, mnt } = await mountFixture(t, fx, { flattenImages: true });
  const flat = join(mnt, 'flattened', imageDirName(fx.image));
  assert.equal((await sh(`ls '${mnt}'`)).stdout, 'flattened\nimages\nlayers\n');
  assert.equal((await sh(`ls '${join(mnt, 'flattened')}'`)).stdout, `${imageDirName(fx.image)}\n`);

  const viewed = await childSnapshot(flat);
  // Nothing of overlayfs's own shows in the merged view: no whiteouts, no opaque xattr.
  assert.deepEqual(
    [...viewed].filter(([, node]) => node.type === 'char' && node.rdevMajor === 0 && node.rdevMinor === 0),
    [],
  );
  assert.ok(
    [...viewed.values()].every(
      (node) => !Object.keys(node.xattrs).some((name) => name.startsWith('trusted.overlay.')),
    ),
  );
  assertMergedLayered(viewed);
  const actual = comparable(viewed);
  assert.deepEqual(diffTrees(comparable(await childSnapshot(await overlayOf(t, mnt, fx))), actual), []);
  assert.deepEqual(diffTrees(comparable(await snapshotTree(await applied(t, fx))), actual), []);
  await assert.rejects(sh(`touch '${flat}/etc/new'`), /Read-only file system/);

  // etc/seeded comes from the top layer: once that layer is local, reads go there.
  const cache = await tempDirFor(t, 'gcfs-fuse-cache-');
  const top = fx.built.layers.at(-1)!;
  const local = join(cache.path, layerDirName(top.descriptor.digest));
  await gnuTarExtract(fx.blobPath(top.descriptor.digest), local, { compression: compressionOf(top) });
  mount.tree.switchLayer(top.descriptor.digest, local);
  const reads: ReadEvent[] = [];
  mount.on('read', (event) => reads.push(event));
  const { stdout } = await sh(`sha256sum < '${flat}/etc/seeded'`);
  assert.equal(stdout.split(' ')[0], viewed.get('etc/seeded')?.sha256);
  assert.ok(
    reads.length > 0 && reads.every((e) => e.source === 'local' && e.layer === top.descriptor.digest),
  );
});

test('an image shows in flattened/ only once all its layers are served', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mount, mnt } = await mountFixture(t, fx, { flattenImages: true });
  mount.tree.setImage(`${fx.image}-partial`, [...fx.layers, `sha256:${'0'.repeat(64)}`]);
  assert.equal((await sh(`ls '${join(mnt, 'flattened')}'`)).stdout, `${imageDirName(fx.image)}\n`);
  await assert.rejects(
    sh(`ls '${join(mnt, 'flattened', imageDirName(`${fx.image}-partial`))}'`),
    /No such file/,
  );
});
