// Layers stored the way LayerIndexer stores them (raw blocks, compression pending), for the
// compaction suites that drive LayerCompactor and BlockReader without a registry.
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { type Digest, digestOf } from '@gcfs/core';
import { deserializeLayerIndex, type LayerIndex, serializeLayerIndex } from '@gcfs/index';
import type { LayerStore } from '../src/index.js';

export const BLOCK = 64 << 10;

/** Blocks alternating text (compresses well) and noise (does not), the last one short. */
export function mixedBlocks(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const size = i === count - 1 ? BLOCK >> 1 : BLOCK;
    if (i % 2 === 1) return randomBytes(size);
    const line = `block ${i}: ${createHash('sha256').update(String(i)).digest('hex')}\n`;
    return Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
  });
}

/** The index of one file holding `blocks` back to back, all raw and compression pending. */
export function rawIndex(blocks: Buffer[]): LayerIndex {
  const contentSize = blocks.reduce((sum, b) => sum + b.length, 0);
  const entry = {
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtimeSec: 0,
    mtimeNsec: 0,
    linkName: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map<string, Buffer>(),
    opaque: false,
    implicit: false,
  };
  return {
    entries: [
      { ...entry, name: '', type: 'dir', mode: 0o755, size: 0, contentOffset: 0 },
      { ...entry, name: 'data', type: 'file', mode: 0o644, size: contentSize, contentOffset: 0 },
    ],
    blockSize: BLOCK,
    blocks: blocks.map((b) => ({
      encoding: 'raw',
      compressedSize: b.length,
      uncompressedSize: b.length,
      crc32: crc32(b),
    })),
    contentSize,
    tarSize: contentSize + 2048,
    entryCount: 1,
    compressionPending: true,
  };
}

/** Store `blocks` as a raw layer; its digest. */
export async function storeRawLayer(store: LayerStore, blocks: Buffer[]): Promise<Digest> {
  const digest = digestOf(randomBytes(16));
  const writer = await store.begin(digest);
  for (const block of blocks) await writer.appendBlock(block);
  await writer.commit(serializeLayerIndex(rawIndex(blocks)));
  return digest;
}

export async function storedIndex(store: LayerStore, digest: Digest): Promise<LayerIndex> {
  const stored = await store.get(digest);
  if (stored === undefined) throw new Error(`${digest} is not stored`);
  return deserializeLayerIndex(stored.index);
}
