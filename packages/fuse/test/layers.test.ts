import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { layerDirName, streamedLayerTarget } from '@gcfs/core';
import { asLowerLayer, diffTrees, gnuTarExtract, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { childSnapshot, fixture, mountFixture, sh } from './harness.js';
import { compressionOf, LAYERED } from './images.js';

test('every file of every layer read through layers/ equals its GNU tar extraction, as a lower layer', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mnt } = await mountFixture(t, fx);
  for (const [i, layer] of fx.built.layers.entries()) {
    const digest = layer.descriptor.digest;
    const reference = await tempDirFor(t, 'gcfs-fuse-ref-');
    await gnuTarExtract(fx.blobPath(digest), reference.path, { compression: compressionOf(layer) });
    const expected = asLowerLayer(await snapshotTree(reference.path));
    const actual = await childSnapshot(join(mnt, 'layers', layerDirName(digest)));
    assert.deepEqual(diffTrees(expected, actual), [], `layer ${i}`);
  }
});

test('whiteouts are 0:0 char devices, opaque dirs carry the overlay xattr, and nothing can be written', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mnt } = await mountFixture(t, fx);
  const layer1 = join(mnt, 'layers', layerDirName(fx.layers[1]!));
  const { stdout } = await sh(`stat -c '%F %t:%T %a' '${layer1}/etc/binary'`);
  assert.equal(stdout.trim(), 'character special file 0:0 0');
  const xattr = await sh(`getfattr --only-values -n trusted.overlay.opaque '${layer1}/opt'`);
  assert.equal(xattr.stdout, 'y');
  const listed = await sh(`getfattr -d -m - '${layer1}/opt'`);
  assert.match(listed.stdout, /trusted\.overlay\.opaque="y"/);
  for (const attempt of [
    `echo x > '${layer1}/etc/added'`,
    `touch '${layer1}/new'`,
    `mkdir '${layer1}/d'`,
    `rm '${layer1}/big'`,
    `setfattr -n user.x -v 1 '${layer1}/big'`,
  ]) {
    await assert.rejects(sh(attempt), /Read-only file system/, attempt);
  }
  const link = await sh(`readlink '${join(mnt, 'images')}'/*/1`);
  assert.equal(link.stdout.trim(), streamedLayerTarget(fx.layers[1]!));
});
