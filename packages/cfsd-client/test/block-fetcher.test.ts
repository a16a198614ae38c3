import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import { BlockFetcher, type ReadBlocksFn } from '../src/block-fetcher.js';

/**
 * Our own ReadBlocks boundary, controlled by the test: every request is recorded and
 * stays pending until the test answers it. Block i of layer L holds `L:i`.
 */
function controlledReads(options: { layerBlocks?: number; serverMax?: number } = {}) {
  const layerBlocks = options.layerBlocks ?? 100;
  const requests: Array<{
    layer: string;
    first: number;
    count: number;
    answer: () => void;
    fail: (err: Error) => void;
  }> = [];
  const read: ReadBlocksFn = (layer, first, count) =>
    new Promise((resolve, reject) => {
      const n = Math.max(0, Math.min(count, options.serverMax ?? count, layerBlocks - first));
      const blocks = Array.from({ length: n }, (_, i) => ({
        index: first + i,
        data: Buffer.from(`${layer}:${first + i}`),
      }));
      requests.push({ layer, first, count, answer: () => resolve(blocks), fail: reject });
    });
  return { read, requests };
}

const text = (blocks: Buffer[]) => blocks.map((b) => b.toString());
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Answer requests as they come until `done` settles. */
async function answerAll(reads: ReturnType<typeof controlledReads>, done: Promise<unknown>) {
  let settled = false;
  const markSettled = () => {
    settled = true;
  };
  done.then(markSettled, markSettled);
  let answered = 0;
  while (!settled) {
    while (answered < reads.requests.length) reads.requests[answered++]!.answer();
    await tick();
  }
}

test('concurrent readers of overlapping blocks share one request per block', async () => {
  const reads = controlledReads();
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 2 });
  const a = fetcher.getBlocks('L', 10, 4);
  const b = fetcher.getBlocks('L', 11, 2);
  const c = fetcher.getBlocks('L', 12, 3);
  const many = Array.from({ length: 20 }, () => fetcher.getBlocks('L', 10, 1));

  // a asked for 10-11 and 12-13; b waits for those; c only adds 14.
  assert.deepEqual(
    reads.requests.map((r) => [r.first, r.count]),
    [
      [10, 2],
      [12, 2],
      [14, 1],
    ],
  );
  assert.equal(fetcher.inflight, 5);
  for (const r of reads.requests) r.answer();
  assert.deepEqual(text(await a), ['L:10', 'L:11', 'L:12', 'L:13']);
  assert.deepEqual(text(await b), ['L:11', 'L:12']);
  assert.deepEqual(text(await c), ['L:12', 'L:13', 'L:14']);
  for (const blocks of await Promise.all(many)) assert.deepEqual(text(blocks), ['L:10']);
  assert.equal(fetcher.inflight, 0);
  assert.equal(reads.requests.length, 3);
});

test('splits runs by maxReadBlocks and around cached blocks; keys include the layer', async () => {
  const reads = controlledReads();
  const cache = new Map<string, Buffer>();
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 3, cache });
  const warm = fetcher.getBlocks('L', 3, 1);
  await answerAll(reads, warm);
  reads.requests.length = 0;

  const all = fetcher.getBlocks('L', 0, 9);
  const other = fetcher.getBlocks('M', 3, 1);
  assert.deepEqual(
    reads.requests.map((r) => [r.layer, r.first, r.count]),
    [
      ['L', 0, 3],
      ['L', 4, 3],
      ['L', 7, 2],
      ['M', 3, 1],
    ],
  );
  await answerAll(reads, Promise.all([all, other]));
  assert.deepEqual(
    text(await all),
    Array.from({ length: 9 }, (_, i) => `L:${i}`),
  );
  assert.deepEqual(text(await other), ['M:3']);
  assert.equal(cache.size, 10);

  reads.requests.length = 0;
  assert.deepEqual(text(await fetcher.getBlocks('L', 2, 3)), ['L:2', 'L:3', 'L:4']);
  assert.equal(reads.requests.length, 0, 'cached blocks are not fetched again');
});

test('a failed fetch rejects every waiter, is not cached, and the next reader fetches again', async () => {
  const reads = controlledReads();
  const cache = new Map<string, Buffer>();
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 4, cache });
  const waiters = [fetcher.getBlocks('L', 0, 2), fetcher.getBlocks('L', 1, 1), fetcher.getBlocks('L', 0, 4)];
  assert.equal(reads.requests.length, 2);
  const failure = new GcfsError(ErrorCode.BackendUnavailable, 'cfsd is down');
  reads.requests[0]!.fail(failure);
  reads.requests[1]!.answer();
  for (const waiter of waiters) await assert.rejects(waiter, (err) => err === failure);
  assert.equal(fetcher.inflight, 0);
  assert.deepEqual([...cache.keys()], ['L/2', 'L/3']);

  const again = fetcher.getBlocks('L', 0, 2);
  assert.deepEqual(
    reads.requests.slice(2).map((r) => [r.first, r.count]),
    [[0, 2]],
  );
  await answerAll(reads, again);
  assert.deepEqual(text(await again), ['L:0', 'L:1']);
});

test('asks again for the rest when the service returns fewer blocks than asked for', async () => {
  const reads = controlledReads({ serverMax: 2 });
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 5 });
  const blocks = fetcher.getBlocks('L', 0, 5);
  await answerAll(reads, blocks);
  assert.deepEqual(text(await blocks), ['L:0', 'L:1', 'L:2', 'L:3', 'L:4']);
  assert.deepEqual(
    reads.requests.map((r) => [r.first, r.count]),
    [
      [0, 5],
      [2, 3],
      [4, 1],
    ],
  );
});

test('blocks beyond the end of the layer are an error, the ones before are delivered', async () => {
  const reads = controlledReads({ layerBlocks: 3 });
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 8 });
  const beyond = fetcher.getBlocks('L', 1, 4);
  const before = fetcher.getBlocks('L', 2, 1);
  await answerAll(reads, Promise.allSettled([beyond, before]));
  await assert.rejects(beyond, (err) => isGcfsError(err, ErrorCode.InvalidArgument));
  assert.deepEqual(text(await before), ['L:2']);
});

test('refuses invalid ranges and settings; an empty range needs no request', async () => {
  const reads = controlledReads();
  assert.throws(() => new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 0 }));
  const fetcher = new BlockFetcher({ readBlocks: reads.read, maxReadBlocks: 2 });
  assert.deepEqual(await fetcher.getBlocks('L', 5, 0), []);
  await assert.rejects(fetcher.getBlocks('L', -1, 1), (err) => isGcfsError(err, ErrorCode.InvalidArgument));
  await assert.rejects(fetcher.getBlocks('L', 0, 1.5), (err) => isGcfsError(err, ErrorCode.InvalidArgument));
  assert.equal(reads.requests.length, 0);
});
