import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SingleFlight } from '../src/index.js';

test('callers of a key share one run until it settles, then the next caller starts afresh', async () => {
  const flights = new SingleFlight<string, number>();
  let runs = 0;
  const gate = Promise.withResolvers<number>();
  const work = () => {
    runs++;
    return gate.promise;
  };
  const first = flights.run('a', work);
  const second = flights.run('a', work);
  assert.equal(first, second);
  assert.equal(runs, 1);
  assert.equal(flights.size, 1);
  assert.equal(flights.get('a'), first);
  gate.resolve(7);
  assert.equal(await second, 7);
  assert.equal(flights.has('a'), false);
  assert.equal(await flights.run('a', async () => 8), 8);
  assert.equal(runs, 1);
});

test('a failure is shared by the callers under way and not remembered; keys are independent', async () => {
  const flights = new SingleFlight<string, string>();
  const failing = flights.run('a', async () => {
    throw new Error('boom');
  });
  const joined = flights.run('a', async () => 'never');
  const other = flights.run('b', async () => 'b');
  await assert.rejects(failing, /boom/);
  await assert.rejects(joined, /boom/);
  assert.equal(await other, 'b');
  assert.equal(await flights.run('a', async () => 'again'), 'again');
  // Work that throws before it returns a promise fails its callers the same way.
  await assert.rejects(
    flights.run('c', () => {
      throw new Error('sync');
    }),
    /sync/,
  );
  assert.equal(flights.size, 0);
});

test('share() makes a promise started elsewhere the flight of a key', async () => {
  const flights = new SingleFlight<number, string>();
  const outside = Promise.withResolvers<string>();
  flights.share(1, outside.promise);
  assert.equal(
    flights.run(1, async () => 'not started'),
    outside.promise,
  );
  outside.reject(new Error('gone'));
  await assert.rejects(outside.promise, /gone/);
  assert.equal(flights.has(1), false);
});
