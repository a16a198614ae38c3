// Kubernetes Events about image streaming. Debian ships no kube-apiserver, so an HTTP server
// in the test stands in for it and records what gcfsd posts; the Event object is checked
// field by field against core/v1.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, type GcfsError } from '@gcfs/core';
import { selfSignedCertificate, tempDirFor } from '@gcfs/testkit';
import {
  chooseApiServer,
  eventNodeName,
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

test('in-cluster API server: from KUBERNETES_SERVICE_HOST/PORT and the service account files, the token read at each request', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-sa-');
  assert.equal(await inClusterApiServer({}, dir.path), undefined);
  // A host but no token: not usable either.
  assert.equal(await inClusterApiServer({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, dir.path), undefined);
  await mkdir(dir.path, { recursive: true });
  await writeFile(join(dir.path, 'token'), 'sa-token\n');
  await writeFile(join(dir.path, 'ca.crt'), 'PEM');
  const api = await inClusterApiServer(
    { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
    dir.path,
  );
  assert.equal(api?.url, 'https://[fd00::1]:6443');
  assert.equal(api?.ca, 'PEM');
  assert.equal(api?.source, 'in-cluster service account');
  assert.deepEqual(await api?.credentials(), { token: 'sa-token' });
  // The kubelet renews a projected token in place.
  await writeFile(join(dir.path, 'token'), 'renewed-token\n');
  assert.deepEqual(await api?.credentials(), { token: 'renewed-token' });
});

test('where events go: --kubeconfig first (a bad one fails), then in-cluster, then the first kubelet kubeconfig found (a bad one is only reported)', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-choose-')).path;
  await mkdir(dir, { recursive: true });
  const good = join(dir, 'good.conf');
  await writeFile(
    good,
    'apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n' +
      'clusters: [{name: k, cluster: {server: "https://10.0.0.9:6443"}}]\nusers: [{name: u, user: {token: tok-123456}}]\n',
  );
  const exec = join(dir, 'exec.conf');
  await writeFile(
    exec,
    (await readFile(good, 'utf8')).replace('{token: tok-123456}', '{exec: {command: aws-iam-authenticator}}'),
  );
  const missing = join(dir, 'missing.conf');
  const sa = join(dir, 'sa');
  await mkdir(sa);
  await writeFile(join(sa, 'token'), 'sa-token');
  const inCluster = { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, serviceAccountDir: sa };
  const none = { env: {}, serviceAccountDir: join(dir, 'no-sa') };

  assert.equal((await chooseApiServer(good, inCluster)).api?.source, `kubeconfig ${good}`);
  await assert.rejects(chooseApiServer(exec, inCluster), (err: GcfsError) => {
    assert.equal(err.code, 'ERR_CONFIG');
    assert.match(err.message, /exec plugin \(aws-iam-authenticator\), which gcfsd does not run/);
    return true;
  });
  await assert.rejects(chooseApiServer(missing, inCluster), /kubeconfig .*missing.conf: cannot be read/);
  assert.equal(
    (await chooseApiServer('', { ...inCluster, kubeletKubeconfigs: [good] })).api?.source,
    'in-cluster service account',
  );
  assert.equal(
    (await chooseApiServer('', { ...none, kubeletKubeconfigs: [missing, good] })).api?.source,
    `kubeconfig ${good}`,
  );
  const bad = await chooseApiServer('', { ...none, kubeletKubeconfigs: [exec, good] });
  assert.equal(bad.api, undefined);
  assert.match(bad.undelivered ?? '', /^the kubelet's kubeconfig .*exec.conf: .*exec plugin/);
  const nothing = await chooseApiServer('', { ...none, kubeletKubeconfigs: [missing] });
  assert.equal(nothing.api, undefined);
  assert.match(
    nothing.undelivered ?? '',
    /no --kubeconfig, no in-cluster service account .* \(.*missing.conf\)/,
  );
});

test("the node events are about: NODE_NAME, else the kubelet certificate's system:node:<name>, else the host name in lower case", async () => {
  const { certificatePem } = await selfSignedCertificate({
    commonName: 'system:node:node-7',
    organization: 'system:nodes',
  });
  const api = (cert?: string) => ({
    url: 'https://127.0.0.1:1',
    credentials: async () => (cert === undefined ? {} : { cert }),
    source: 'test',
  });
  assert.equal(await eventNodeName(api(certificatePem), { NODE_NAME: 'named' }), 'named');
  assert.equal(await eventNodeName(api(certificatePem), {}), 'node-7');
  assert.equal(await eventNodeName(api(), {}), hostname().trim().toLowerCase());
  assert.equal(await eventNodeName(undefined, {}), hostname().trim().toLowerCase());
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
    apiServer: { url: `http://${address}`, credentials: async () => ({ token }), source: 'test' },
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
