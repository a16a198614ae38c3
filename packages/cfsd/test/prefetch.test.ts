import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Digest } from '@gcfs/core';
import type { ParsedLayer } from '../src/layer-indexes.js';
import { PrefetchReports } from '../src/prefetch.js';

const LAYER = `sha256:${'ab'.repeat(32)}` as Digest;
const IMAGE = `sha256:${'cd'.repeat(32)}` as Digest;

/** One layer of 10-byte blocks holding one file `f` of `size` bytes at offset 0. */
function layerWithFile(size: number): ParsedLayer {
  const file = { type: 'file', size, contentOffset: 0 };
  return {
    index: { blockSize: 10 },
    toc: { get: (path: string) => (path === 'f' ? file : undefined), resolveHardlink: (e: unknown) => e },
  } as unknown as ParsedLayer;
}

const read = (offset: number, length: number, atMs: number) => ({
  layerDigest: LAYER,
  path: 'f',
  offset,
  length,
  atMs,
});

test('each block is reported at the earliest time any read covered it, in first-read order', async () => {
  const reports = new PrefetchReports();
  const layer = layerWithFile(1000);
  const accepted = await reports.record(
    IMAGE,
    [read(0, 1000, 50), read(200, 100, 10), read(250, 5, 90), read(5000, 10, 1), read(0, 0, 0)],
    () => layer,
  );
  assert.equal(accepted, 3, 'reads past the end or empty are not counted');
  const report = await reports.get(IMAGE);
  assert.deepEqual(
    report?.ranges.map((r) => [r.firstBlock, r.count]),
    [
      [20, 10],
      [0, 20],
      [30, 70],
    ],
  );
  // A later report with an earlier read moves those blocks first.
  await reports.record(IMAGE, [read(990, 10, 5)], () => layer);
  assert.deepEqual((await reports.get(IMAGE))?.ranges[0], { layerDigest: LAYER, firstBlock: 99, count: 1 });
});

test('many reads over the same large file cost its blocks once, not reads × blocks', async () => {
  const reports = new PrefetchReports();
  const layer = layerWithFile(1_000_000);
  const reads = Array.from({ length: 10_000 }, (_, i) => read(i, 1_000_000, i));
  // reads × blocks would be 10^9 map updates: this finishes only if each block is visited once.
  assert.equal(await reports.record(IMAGE, reads, () => layer), 10_000);
  const report = await reports.get(IMAGE);
  assert.deepEqual(
    report?.ranges.map((r) => [r.firstBlock, r.count]),
    [[0, 100_000]],
  );
});
