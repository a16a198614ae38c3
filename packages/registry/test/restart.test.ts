import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Digester, digestOf, MediaType } from '@gcfs/core';
import type { ResumeEvent } from '../src/index.js';
import { clientFor, descriptorOf, ref, registryFor } from './fixtures.js';

test('openBlobStream resumes with Range across a registry restart and verifies the whole', async (t) => {
  const registry = await registryFor(t);
  const client = clientFor(t);
  const target = ref(registry.host, 'restart/blob');
  const bytes = randomBytes(64 * 1024 * 1024);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  await client.pushBlob(target, desc, bytes);
  const resumes: ResumeEvent[] = [];
  client.on('resume', (e) => resumes.push(e));

  const stream = client.openBlobStream(target, desc);
  const chunks = stream[Symbol.asyncIterator]();
  const digester = new Digester();
  const first = await chunks.next();
  assert.equal(first.done, false);
  digester.update(first.value as Buffer);
  // Consumption is paused while the registry restarts: the open connection breaks.
  await registry.restart();
  let ended = false;
  for (let next = await chunks.next(); ; next = await chunks.next()) {
    if (next.done) {
      ended = true;
      break;
    }
    digester.update(next.value as Buffer);
  }
  assert.ok(ended);
  assert.equal(digester.size, bytes.length);
  assert.equal(digester.digest(), digestOf(bytes));
  assert.ok(resumes.length >= 1, 'the stream resumed');
  assert.ok(resumes.every((e) => e.offset > 0 && e.offset < bytes.length));
});
