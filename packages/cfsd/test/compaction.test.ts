import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { Digest } from '@gcfs/core';
import { deserializeLayerIndex, type LayerIndex } from '@gcfs/index';
import { containerfs as pb } from '@gcfs/proto';
import { tempDirFor } from '@gcfs/testkit';
import { FileStore } from '../src/index.js';
import { ALICE, decodeBlock, privateRegistry, pushBuilt, type RawClient, runCfsd } from './harness.js';

const BLOCK_SIZE = 64 << 10;

const layerSpec = (name: string) => ({
  layers: [
    {
      compression: 'gzip' as const,
      entries: [
        { type: 'file' as const, path: 'text.txt', content: `${name}: a line of text\n`.repeat(30_000) },
        { type: 'file' as const, path: 'noise.bin', content: { size: 400_000, seed: name } },
      ],
    },
  ],
});

/** Every block of the layer through ReadBlocks: its encoding, and its bytes decoded and checked. */
async function readAll(client: RawClient, token: string, layer: string, count: number) {
  const { blocks } = await client.readBlocks({
    sessionToken: token,
    layerDigest: layer,
    firstBlock: 0,
    count,
  });
  assert.equal(blocks.length, count);
  return { encodings: blocks.map((b) => b.encoding), content: blocks.map(decodeBlock) };
}

async function storedIndex(dir: string, digest: string): Promise<LayerIndex> {
  const store = await FileStore.open(dir);
  try {
    const stored = await store.get(digest as Digest);
    assert.ok(stored);
    return deserializeLayerIndex(stored.index);
  } finally {
    await store.close();
  }
}

test('indexed raw, served compressed, compacted in the background; after a restart too', async (t) => {
  const registry = await privateRegistry(t);
  const first = await pushBuilt(t, registry, 'private/compact-a', layerSpec('a'));
  const second = await pushBuilt(t, registry, 'private/compact-b', layerSpec('b'));
  const storeDir = (await tempDirFor(t, 'gcfs-compaction-store-')).path;

  // A quiet period longer than the test: the layer stays raw.
  const before = await runCfsd(t, { storeDir, blockSize: BLOCK_SIZE, compactionQuietMs: 3_600_000 });
  const auth = await before.client.authImage({ image: first.image, credentials: ALICE, wait: true });
  assert.equal(auth.status, pb.ImageStatus.IMAGE_STATUS_READY);
  const [layer] = auth.layers;
  const served = await readAll(before.client, auth.sessionToken, layer!.digest, layer!.blockCount);
  // Text blocks go out compressed, the noise blocks as they are.
  assert.ok(served.encodings.includes(pb.BlockEncoding.BLOCK_ENCODING_ZSTD));
  assert.ok(served.encodings.includes(pb.BlockEncoding.BLOCK_ENCODING_RAW));
  assert.equal(before.cfsd.compactor.pending, 1);
  await before.cfsd.stop();
  const raw = await storedIndex(storeDir, layer!.digest);
  assert.equal(raw.compressionPending, true);
  assert.ok(raw.blocks.every((b) => b.encoding === 'raw'));

  // Restarted with no quiet period: the raw layer is found and compacted.
  const after = await runCfsd(t, { storeDir, blockSize: BLOCK_SIZE, compactionQuietMs: 0 });
  const [compacted] = await once(after.cfsd.compactor, 'compacted');
  assert.equal(compacted.digest, layer!.digest);
  assert.ok(compacted.bytesAfter < compacted.bytesBefore);
  const again = await after.client.authImage({ image: first.image, credentials: ALICE, wait: true });
  assert.deepEqual(await readAll(after.client, again.sessionToken, layer!.digest, layer!.blockCount), served);

  // A layer indexed now is compacted once indexed.
  const next = once(after.cfsd.compactor, 'compacted');
  const other = await after.client.authImage({ image: second.image, credentials: ALICE, wait: true });
  assert.equal((await next)[0].digest, other.layers[0]!.digest);
  const metrics = await after.cfsd.metrics.registry.metrics();
  assert.match(metrics, /cfsd_layers_compacted_total 2/);
  assert.match(metrics, /cfsd_layers_compaction_pending 0/);
  assert.match(metrics, /cfsd_compaction_bytes_total\{stage="after"\} [1-9]/);
  await after.cfsd.stop();

  const done = await storedIndex(storeDir, layer!.digest);
  assert.equal(done.compressionPending, undefined);
  assert.deepEqual(
    done.blocks.map((b) =>
      b.encoding === 'zstd' ? pb.BlockEncoding.BLOCK_ENCODING_ZSTD : pb.BlockEncoding.BLOCK_ENCODING_RAW,
    ),
    served.encodings,
  );
  assert.deepEqual(
    done.blocks.map((b) => b.crc32),
    raw.blocks.map((b) => b.crc32),
  );
});
