import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retryUntilStopped } from '../src/index.js';

const backoff = { initialMs: 1, maxMs: 2 };

test('attempts are numbered and repeated until one says done', async () => {
  const seen: number[] = [];
  const done = await retryUntilStopped(
    async (n) => {
      seen.push(n);
      return n === 3;
    },
    { backoff, signal: new AbortController().signal },
  );
  assert.equal(done, true);
  assert.deepEqual(seen, [1, 2, 3]);
});

test('the signal stops the retries during a pause, and before the first attempt', async () => {
  const stop = new AbortController();
  let attempts = 0;
  setTimeout(() => stop.abort(), 10);
  const done = await retryUntilStopped(
    async () => {
      attempts++;
      return false;
    },
    // A pause of a minute: only the abort can end the call in time for the test.
    { backoff: { initialMs: 60_000, maxMs: 60_000 }, signal: stop.signal },
  );
  assert.equal(done, false);
  assert.equal(attempts, 1);
  assert.equal(await retryUntilStopped(async () => true, { backoff, signal: stop.signal }), false);
});
