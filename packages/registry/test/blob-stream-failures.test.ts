// A blob stream that fails never leaves a response body behind: an unread body holds its
// connection, and closing the client then waits for it (or errors it with nobody listening).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { ErrorCode, isGcfsError, MediaType } from '@gcfs/core';
import { closeServer, listenOn } from '@gcfs/testkit';
import { RegistryClient } from '../src/index.js';
import { descriptorOf } from './fixtures.js';

test('a resume answered with the wrong Content-Range fails the stream, and the client still closes', async (t) => {
  const bytes = randomBytes(4 * 1024 * 1024);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  let requests = 0;
  const server = createServer((_req, res) => {
    requests += 1;
    if (requests === 1) {
      // Half the blob, then the connection breaks: the stream resumes with a Range request.
      res.writeHead(200, { 'content-length': bytes.length });
      res.write(bytes.subarray(0, bytes.length / 2), () => res.destroy());
      return;
    }
    // A range other than the one asked for, with more than a socket buffer of body.
    res.writeHead(206, { 'content-range': `bytes 1-${bytes.length - 1}/${bytes.length}` });
    res.end(bytes.subarray(1));
  });
  const origin = await listenOn(server, '127.0.0.1');
  t.after(() => closeServer(server));
  const client = new RegistryClient({ insecureHosts: ['127.0.0.1'], backoff: { initialMs: 1, maxMs: 1 } });
  const stream = client.openBlobStream(`${new URL(origin).host}/fails/resume:1`, desc);
  await assert.rejects(stream.toArray(), (err) => isGcfsError(err, ErrorCode.RegistryProtocol));
  assert.equal(requests, 2);
  // Before the fix the unread 206 body kept its connection and close() never returned.
  await client.close();
});

test('a body longer than the blob fails with ERR_SIZE_MISMATCH, and the client still closes', async (t) => {
  const bytes = randomBytes(2 * 1024 * 1024);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  // No Content-Length (chunked): the excess is only seen as it arrives.
  const server = createServer((_req, res) => {
    res.writeHead(200);
    res.end(Buffer.concat([bytes, randomBytes(1024 * 1024)]));
  });
  const origin = await listenOn(server, '127.0.0.1');
  t.after(() => closeServer(server));
  const client = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  const stream = client.openBlobStream(`${new URL(origin).host}/fails/longer:1`, desc);
  await assert.rejects(stream.toArray(), (err) => isGcfsError(err, ErrorCode.SizeMismatch));
  await client.close();
});

test('a slow consumer gets the whole blob verified, and one that stops midway frees the connection', async (t) => {
  const bytes = randomBytes(8 * 1024 * 1024);
  const desc = descriptorOf(MediaType.OciLayer, bytes);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  const origin = await listenOn(server, '127.0.0.1');
  t.after(() => closeServer(server));
  const client = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  const ref = `${new URL(origin).host}/slow/consumer:1`;

  // Backpressure: the body is paused while this consumer lags, and nothing is lost.
  const chunks: Buffer[] = [];
  for await (const chunk of client.openBlobStream(ref, desc)) {
    chunks.push(chunk as Buffer);
    if (chunks.length % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(Buffer.concat(chunks).equals(bytes));

  const stream = client.openBlobStream(ref, desc);
  for await (const _chunk of stream) break;
  assert.ok(stream.destroyed);
  // The unread rest of the body was discarded: close() returns instead of waiting for it.
  await client.close();
});
