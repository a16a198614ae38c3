import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadActivity } from '../../src/daemon/read-activity.js';

/** Record a remote read every `everyMs` until `stop` is aborted; resolves with the last read's time. */
function readContinuously(activity: ReadActivity, everyMs: number, stop: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    let last = Date.now();
    const timer = setInterval(() => {
      activity.record({ source: 'remote' });
      last = Date.now();
    }, everyMs);
    stop.addEventListener('abort', () => {
      clearInterval(timer);
      resolve(last);
    });
  });
}

test('quiet() waits for on-demand reads to pause; local reads do not count', async () => {
  const activity = new ReadActivity();
  const stop = new AbortController();
  const reading = readContinuously(activity, 10, stop.signal);
  setTimeout(() => stop.abort(), 150);
  await activity.quiet({ quietMs: 60, maxMs: 10_000 });
  const lastRead = await reading;
  assert.ok(Date.now() - lastRead >= 60, 'resolved only once the reads had paused for the quiet period');

  // Reads of downloaded layers (local) do not hold downloads back.
  const local = setInterval(() => activity.record({ source: 'local' }), 5);
  try {
    const start = Date.now();
    await activity.quiet({ quietMs: 30, maxMs: 10_000 });
    assert.ok(Date.now() - start < 5_000);
  } finally {
    clearInterval(local);
  }
});

test('quiet() gives up waiting after maxMs, and rejects when aborted', async () => {
  const activity = new ReadActivity();
  const stop = new AbortController();
  const reading = readContinuously(activity, 5, stop.signal);
  try {
    await activity.quiet({ quietMs: 1_000, maxMs: 100 });
    assert.equal(stop.signal.aborted, false, 'resolved while the reads went on');
  } finally {
    stop.abort();
    await reading;
  }
  const abort = new AbortController();
  const waiting = activity.quiet({ quietMs: 10_000, maxMs: 20_000, signal: abort.signal });
  abort.abort();
  await assert.rejects(waiting);
});
