import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { test } from 'node:test';
import { seededChunks } from '@gcfs/image-builder';
import { tempDirFor } from '@gcfs/testkit';
import {
  type BlockEncoding,
  type BlockMeta,
  decodeBlock,
  decompressLayer,
  indexLayer,
} from '../src/index.js';
import { buildLayerBlob } from './helpers.js';

test('a 300 MiB layer is indexed in bounded memory, its content intact', async (t) => {
  const dir = await tempDirFor(t);
  const big = { size: 300 << 20, seed: 'large' };
  const blob = await buildLayerBlob(
    dir.path,
    [
      { type: 'file', path: 'small', content: 'before' },
      { type: 'file', path: 'big', content: big },
      { type: 'file', path: 'zeros', content: Buffer.alloc(3 << 20) },
    ],
    'zstd',
  );
  // The sink verifies and hashes each block and keeps none of them.
  const content = createHash('sha256');
  const sink = {
    async writeBlock(
      index: number,
      stored: Buffer,
      meta: { encoding: BlockEncoding; uncompressedSize: number; crc32: number },
    ) {
      const full: BlockMeta = { ...meta, compressedSize: stored.length };
      content.update(await decodeBlock(index, stored, full));
    },
  };
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  t.after(() => clearInterval(sampler));
  const index = await indexLayer(decompressLayer(createReadStream(blob), 'zstd'), sink);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);

  // The content stream is the three files back to back.
  const expected = createHash('sha256').update('before');
  for await (const chunk of seededChunks(big)) expected.update(chunk);
  expected.update(Buffer.alloc(3 << 20));
  assert.equal(content.digest('hex'), expected.digest('hex'));
  assert.equal(index.contentSize, 6 + big.size + (3 << 20));
  assert.equal(index.blocks.length, Math.ceil(index.contentSize / (256 * 1024)));
  const bigEntry = index.entries.find((e) => e.name === 'big')!;
  assert.equal(bigEntry.contentOffset, 6);
  assert.equal(bigEntry.size, big.size);
  assert.ok(peak - baseline < 150 << 20, `RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(0)} MiB`);
});
