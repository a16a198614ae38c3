import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { type Digest, digestOf } from '@gcfs/core';
import type { LayerStore } from '../../src/store/index.js';

/** A layer as the tests know it: what was written, to compare with what is read back. */
export interface TestLayer {
  digest: Digest;
  index: Buffer;
  blocks: Buffer[];
}

export function randomDigest(): Digest {
  return digestOf(randomBytes(16));
}

/** Random blocks of random sizes up to maxSize, including empty ones. */
export function randomLayer(blockCount = randomInt(0, 40), maxSize = 5000): TestLayer {
  const blocks = Array.from({ length: blockCount }, () => randomBytes(randomInt(0, maxSize + 1)));
  return { digest: randomDigest(), index: randomBytes(randomInt(0, 2000)), blocks };
}

/** Reproducible bytes for block `i` of the layer named by `seed` (shared with the crash child). */
export function seededBlock(seed: string, i: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, k = 0; offset < size; offset += 32, k++) {
    createHash('sha256').update(`${seed}/${i}/${k}`).digest().copy(out, offset);
  }
  return out;
}

export function seededLayer(seed: string, blockCount: number, blockSize: number): TestLayer {
  return {
    digest: digestOf(seed),
    index: Buffer.from(`index of ${seed}`),
    blocks: Array.from({ length: blockCount }, (_, i) => seededBlock(seed, i, blockSize)),
  };
}

export async function writeLayer(store: LayerStore, layer: TestLayer): Promise<void> {
  const writer = await store.begin(layer.digest);
  for (const block of layer.blocks) await writer.appendBlock(block);
  await writer.commit(layer.index);
}

/** get() and a full readBlocks() give back exactly what was written. */
export async function assertLayer(store: LayerStore, layer: TestLayer): Promise<void> {
  const stored = await store.get(layer.digest);
  assert.ok(stored, `layer ${layer.digest} should be stored`);
  assert.equal(stored.digest, layer.digest);
  assert.ok(stored.index.equals(layer.index), 'index differs');
  assert.equal(typeof stored.createdAt, 'number');
  let offset = 0;
  assert.deepEqual(
    stored.blocks,
    layer.blocks.map((block) => {
      const record = { offset, length: block.length };
      offset += block.length;
      return record;
    }),
  );
  assertBlocks(await store.readBlocks(layer.digest, 0, layer.blocks.length + 1), layer.blocks);
}

export function assertBlocks(actual: Buffer[], expected: Buffer[], what = 'blocks'): void {
  assert.equal(actual.length, expected.length, `${what}: count`);
  actual.forEach((block, i) => {
    assert.ok(block.equals(expected[i]!), `${what}: block ${i} differs`);
  });
}
