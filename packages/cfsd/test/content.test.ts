import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { layerCompression } from '@gcfs/core';
import { EVERY_ENTRY_KIND, OciLayout } from '@gcfs/image-builder';
import { containerfs as pb } from '@gcfs/proto';
import {
  diffTrees,
  gnuTarExtract,
  snapshotTree,
  type TreeNode,
  type TreeSnapshot,
  tempDirFor,
} from '@gcfs/testkit';
import { ALICE, privateRegistry, pushBuilt, type RawClient, readContent, runCfsd } from './harness.js';

const WHITEOUT = /(^|\/)\.wh\./;

/** What GNU tar would leave on disk, rebuilt from the TOC and content read through ReadBlocks. */
async function treeFromService(
  client: RawClient,
  token: string,
  layer: string,
): Promise<{ tree: TreeSnapshot; markers: string[] }> {
  const { header, entries } = await client.layerIndex(token, layer);
  assert.equal(header.entryCount, entries.length);
  const tree: TreeSnapshot = new Map();
  const markers: string[] = [];
  const groups = new Map<string, string[]>();
  for (const entry of entries) {
    if (entry.name === '') continue; // the layer's root: GNU tar extracts into an existing dir
    const xattrs = Object.fromEntries(
      Object.entries(entry.xattrs).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    );
    const node: TreeNode = {
      type: 'file',
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtimeSec: entry.mtimeSec,
      size: 0,
      xattrs,
    };
    switch (entry.type) {
      // A hard link carries its target's metadata and content position (entries are sorted
      // by name, so it may come before its target).
      case pb.EntryType.ENTRY_TYPE_HARDLINK:
      case pb.EntryType.ENTRY_TYPE_FILE: {
        if (entry.type === pb.EntryType.ENTRY_TYPE_HARDLINK) {
          const group = groups.get(entry.linkName) ?? [entry.linkName];
          group.push(entry.name);
          for (const member of group) groups.set(member, group);
        }
        const content = await readContent(
          client,
          token,
          layer,
          header.blockSize,
          entry.contentOffset,
          entry.size,
        );
        node.size = content.length;
        node.sha256 = createHash('sha256').update(content).digest('hex');
        break;
      }
      case pb.EntryType.ENTRY_TYPE_DIR:
        node.type = 'dir';
        if (entry.opaque) markers.push(`${entry.name}/.wh..wh..opq`);
        break;
      case pb.EntryType.ENTRY_TYPE_SYMLINK:
        node.type = 'symlink';
        node.mode = 0o777;
        node.linkTarget = entry.linkName;
        break;
      case pb.EntryType.ENTRY_TYPE_CHAR:
      case pb.EntryType.ENTRY_TYPE_BLOCK:
        node.type = entry.type === pb.EntryType.ENTRY_TYPE_CHAR ? 'char' : 'block';
        node.rdevMajor = entry.devMajor;
        node.rdevMinor = entry.devMinor;
        break;
      case pb.EntryType.ENTRY_TYPE_FIFO:
        node.type = 'fifo';
        break;
      case pb.EntryType.ENTRY_TYPE_WHITEOUT:
        markers.push(entry.name.replace(/[^/]+$/, (name) => `.wh.${name}`));
        continue;
      default:
        assert.fail(`unexpected entry type ${entry.type} for ${entry.name}`);
    }
    tree.set(entry.name, node);
  }
  for (const [path, group] of groups) tree.get(path)!.hardlinkGroup = [...group].sort()[0]!;
  return { tree, markers: markers.sort() };
}

test('every file of every layer read through the TOC and ReadBlocks equals GNU tar extraction', async (t) => {
  const registry = await privateRegistry(t);
  const { built, image } = await pushBuilt(t, registry, 'private/app', {
    layers: [
      { compression: 'gzip', entries: [...EVERY_ENTRY_KIND] },
      { compression: 'zstd', longNames: 'gnu', entries: [...EVERY_ENTRY_KIND] },
      {
        compression: 'none',
        entries: [
          // Each directory right before its members: GNU tar sets a directory's mtime when it
          // leaves it, so an interleaved order would leave extraction-time mtimes behind.
          { type: 'dir', path: 'data', mode: 0o700 },
          { type: 'file', path: 'data/big.bin', content: { size: 3 * 1024 * 1024 + 17, seed: 'big' } },
          { type: 'file', path: 'data/zero', content: '' },
          { type: 'file', path: 'data/small', content: 'small\n' },
          { type: 'dir', path: 'many' },
          ...Array.from({ length: 40 }, (_, i) => ({
            type: 'file' as const,
            path: `many/f${i}`,
            content: `file ${i}\n`.repeat(i * 50),
          })),
        ],
      },
    ],
  });
  const { client } = await runCfsd(t, { blockSize: 64 * 1024 });
  const auth = await client.authImage({ image, credentials: ALICE, wait: true });
  assert.equal(auth.status, pb.ImageStatus.IMAGE_STATUS_READY, auth.notStreamableReason);
  assert.equal(auth.manifestDigest, built.manifestDigest);
  assert.equal(auth.layers.length, 3);

  const layout = await OciLayout.open(built.layoutDir);
  for (const [i, layer] of built.layers.entries()) {
    const info = auth.layers[i]!;
    assert.equal(info.digest, layer.descriptor.digest);
    assert.equal(info.status, pb.LayerStatus.LAYER_STATUS_READY);
    assert.equal(info.blockSize, 64 * 1024);
    const dir = await tempDirFor(t, 'gcfs-gnutar-');
    const compression = layerCompression(layer.descriptor.mediaType)!;
    await gnuTarExtract(layout.blobPath(layer.descriptor.digest), join(dir.path, 'x'), { compression });
    const gnu = await snapshotTree(join(dir.path, 'x'));
    const served = await treeFromService(client, auth.sessionToken, info.digest);
    assert.deepEqual(diffTrees(gnu, served.tree, { ignorePaths: WHITEOUT }), [], `layer ${i}`);
    assert.deepEqual(
      served.markers,
      [...gnu.keys()].filter((p) => WHITEOUT.test(p)).sort(),
      `layer ${i} whiteouts`,
    );
  }
});
