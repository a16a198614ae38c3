// Kubernetes Events about image streaming. Debian ships no kube-apiserver, so an HTTP server
// in the test stands in for it and records what gcfsd posts; the Event object is checked
// field by field against core/v1.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import {
  IMAGE_STREAMING_REASON,
  inClusterApiServer,
  KubernetesEventReporter,
} from '../../src/daemon/index.js';

function capturedLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ format: 'json', level: 'debug', destination: sink }), lines };
}

test('in-cluster API server: from KUBERNETES_SERVICE_HOST/PORT and the service account files', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-sa-');
  assert.equal(await inClusterApiServer({}, dir.path), undefined);
  // A host but no token: not usable either.
  assert.equal(await inClusterApiServer({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, dir.path), undefined);
  await mkdir(dir.path, { recursive: true });
  await writeFile(join(dir.path, 'token'), 'sa-token\n');
  await writeFile(join(dir.path, 'ca.crt'), 'PEM');
  assert.deepEqual(
    await inClusterApiServer(
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      dir.path,
    ),
    { url: 'https://[fd00::1]:6443', token: 'sa-token', ca: 'PEM' },
  );
});

test('events are posted to the API server as core/v1 Events on the node, the token never logged', async (t) => {
  const received: Array<{ url?: string; auth?: string; body: Record<string, unknown> }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ url: req.url, auth: req.headers.authorization, body: JSON.parse(body) });
      res.writeHead(received.length === 1 ? 201 : 403, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { logger, lines } = capturedLogger();
  const token = 'very-secret-service-account-token';
  const reporter = new KubernetesEventReporter({
    logger,
    node: 'node-1',
    apiServer: { url: `http://${address}`, token },
  });
  t.after(() => reporter.close());
  reporter.report({ type: 'Warning', message: 'Image r/app@sha256:1 is not streamed' });
  reporter.report({ type: 'Normal', message: 'Image r/app@sha256:2 is streamed by gcfs' });
  for (let i = 0; i < 100 && lines.filter((l) => /refused an event/.test(l)).length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(received.length, 2);
  const [first] = received;
  assert.equal(first?.url, '/api/v1/namespaces/default/events');
  assert.equal(first?.auth, `Bearer ${token}`);
  const event = first?.body as {
    apiVersion: string;
    kind: string;
    reason: string;
    type: string;
    message: string;
    involvedObject: object;
    source: { component: string };
    metadata: { namespace: string };
    firstTimestamp: string;
  };
  assert.equal(event.apiVersion, 'v1');
  assert.equal(event.kind, 'Event');
  assert.equal(event.reason, IMAGE_STREAMING_REASON);
  assert.equal(event.type, 'Warning');
  assert.equal(event.message, 'Image r/app@sha256:1 is not streamed');
  assert.deepEqual(event.involvedObject, { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'node-1' });
  assert.equal(event.source.component, 'gcfsd');
  assert.equal(event.metadata.namespace, 'default');
  assert.ok(!Number.isNaN(Date.parse(event.firstTimestamp)));
  // Every event is also a log line; the refusal of the second is logged, with no token anywhere.
  assert.equal(lines.filter((line) => line.includes('Event Warning ImageStreaming')).length, 1);
  assert.ok(lines.some((line) => /refused an event/.test(line) && line.includes('403')));
  assert.equal(lines.join('').includes(token), false);
});

test('without an API server, events are logged and gcfsd says once that they are not delivered', async (t) => {
  const { logger, lines } = capturedLogger();
  const reporter = new KubernetesEventReporter({ logger, node: 'node-1' });
  t.after(() => reporter.close());
  reporter.report({ type: 'Warning', message: 'one' });
  reporter.report({ type: 'Warning', message: 'two' });
  assert.equal(lines.filter((line) => line.includes('Kubernetes events are not delivered')).length, 1);
  assert.equal(lines.filter((line) => line.includes('Event Warning ImageStreaming')).length, 2);
  assert.ok(lines.every((line) => !line.includes('ImageStreaming') || line.includes('"delivered":false')));
});
