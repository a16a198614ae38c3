// Kubeconfigs as kubectl and the kubelet write them, against an HTTPS stand-in for the API
// server that authenticates tokens and client certificates as kube-apiserver does: what
// gcfsd posts its events with when it runs on a node outside the cluster's pods.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, describeError, type GcfsError, redact } from '@gcfs/core';
import { type KubeApiStandIn, selfSignedCertificate, startKubeApiStandIn, tempDirFor } from '@gcfs/testkit';
import { stringify } from 'yaml';
import { KubernetesEventReporter, kubeletNodeName, loadKubeconfig } from '../../src/daemon/index.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'other', cluster: { server: 'https://192.0.2.1' } },
      { name: 'k8s', cluster },
    ],
    contexts: [{ name: 'node', context: { cluster: 'k8s', user: 'me' } }],
    'current-context': 'node',
    users: [{ name: 'me', user }],
  });
}

/** Post one event through a reporter on `path`'s kubeconfig; the log lines. */
async function postOne(api: KubeApiStandIn, path: string, message: string): Promise<string[]> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ format: 'json', level: 'debug', destination: sink });
  const reporter = new KubernetesEventReporter({
    logger,
    node: 'node-7',
    apiServer: await loadKubeconfig(path),
  });
  const before = api.events.length + api.refused.length;
  reporter.report({ type: 'Warning', message });
  for (let i = 0; i < 250 && api.events.length + api.refused.length === before; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await reporter.close();
  return lines;
}

test('a token kubeconfig (CA inline): the event reaches the API server as the token’s user, the token never in a log', async (t) => {
  const token = 'gcfsd-sa-token-0123456789';
  const api = await startKubeApiStandIn({ tokens: { [token]: 'system:serviceaccount:gcfs:gcfsd' } });
  t.after(() => api.close());
  const dir = (await tempDirFor(t, 'gcfs-kubeconfig-')).path;
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'gcfsd.kubeconfig');
  await writeFile(
    path,
    kubeconfig({ server: `${api.url}/`, 'certificate-authority-data': b64(api.ca) }, { token }),
  );
  const lines = await postOne(api, path, 'Image r/app@sha256:1 is not streamed');
  assert.deepEqual(api.refused, []);
  assert.equal(api.events.length, 1);
  const [posted] = api.events;
  assert.equal(posted?.user, 'system:serviceaccount:gcfs:gcfsd');
  assert.equal(posted?.namespace, 'default');
  assert.equal(posted?.event.message, 'Image r/app@sha256:1 is not streamed');
  assert.ok(lines.some((line) => line.includes('Event Warning ImageStreaming')));
  assert.equal(lines.join('').includes(token), false);
  assert.equal(redact(`Bearer-less ${token}`).includes(token), false, 'registered for redaction');
});

test('the kubelet’s kubeconfig: certificate and key in one file, paths relative to the kubeconfig; the node is the certificate’s; a rotated certificate is used', async (t) => {
  const first = await selfSignedCertificate({
    commonName: 'system:node:node-7',
    organization: 'system:nodes',
  });
  const api = await startKubeApiStandIn({ clientCa: first.certificatePem });
  t.after(() => api.close());
  const dir = (await tempDirFor(t, 'gcfs-kubelet-')).path;
  await mkdir(join(dir, 'pki'), { recursive: true });
  await writeFile(join(dir, 'ca.crt'), api.ca);
  await writeFile(join(dir, 'pki/kubelet-client-current.pem'), first.certificatePem + first.keyPem);
  const path = join(dir, 'kubelet.conf');
  await writeFile(
    path,
    kubeconfig(
      { server: api.url, 'certificate-authority': 'ca.crt' },
      {
        'client-certificate': 'pki/kubelet-client-current.pem',
        'client-key': 'pki/kubelet-client-current.pem',
      },
    ),
  );
  const loaded = await loadKubeconfig(path);
  assert.equal(kubeletNodeName((await loaded.credentials()).cert), 'node-7');
  const lines = await postOne(api, path, 'first');
  assert.deepEqual(api.refused, []);
  assert.deepEqual(
    api.events.map((e) => [e.user, e.event.message]),
    [['system:node:node-7', 'first']],
  );
  assert.equal(lines.join('').includes(first.keyPem.split('\n')[1]!), false);

  // The kubelet rotates its certificate in place: an unknown one is refused, so the second
  // event shows the new file was read.
  const other = await selfSignedCertificate({
    commonName: 'system:node:node-7',
    organization: 'system:nodes',
  });
  await writeFile(join(dir, 'pki/kubelet-client-current.pem'), other.certificatePem + other.keyPem);
  await postOne(api, path, 'second');
  assert.deepEqual(api.refused, ['401 Unauthorized']);
});

test('tokenFile is read at each event, insecure-skip-tls-verify and tls-server-name are honoured', async (t) => {
  const api = await startKubeApiStandIn({ tokens: { 'token-one-1234': 'one', 'token-two-5678': 'two' } });
  t.after(() => api.close());
  const dir = (await tempDirFor(t, 'gcfs-tokenfile-')).path;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'token'), 'token-one-1234\n');
  const insecure = join(dir, 'insecure.kubeconfig');
  await writeFile(
    insecure,
    kubeconfig({ server: api.url, 'insecure-skip-tls-verify': true }, { tokenFile: 'token' }),
  );
  await postOne(api, insecure, 'a');
  await writeFile(join(dir, 'token'), 'token-two-5678\n');
  await postOne(api, insecure, 'b');
  // Its certificate names 127.0.0.1 and kubernetes.default, not localhost.
  const named = join(dir, 'named.kubeconfig');
  await writeFile(
    named,
    kubeconfig(
      {
        server: api.url.replace('127.0.0.1', 'localhost'),
        'certificate-authority-data': b64(api.ca),
        'tls-server-name': 'kubernetes.default',
      },
      { tokenFile: join(dir, 'token') },
    ),
  );
  await postOne(api, named, 'c');
  assert.deepEqual(api.refused, []);
  assert.deepEqual(
    api.events.map((e) => `${e.user}:${e.event.message}`),
    ['one:a', 'two:b', 'two:c'],
  );
});

test('a kubeconfig gcfsd cannot use is refused with ERR_CONFIG and what to fix', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-bad-kubeconfig-')).path;
  await mkdir(dir, { recursive: true });
  const cases: Array<[string, string, RegExp]> = [
    [
      'not-yaml',
      'users:\n- user: {token: secret-in-a-bad-line\n',
      /is not valid YAML \(line \d+, column \d+\)$/,
    ],
    [
      'bad-cert',
      kubeconfig(
        { server: 'https://k' },
        {
          'client-certificate-data': b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
          'client-key-data': b64('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
        },
      ),
      /client-certificate is not a valid certificate/,
    ],
    ['no-context', stringify({ clusters: [] }), /has no current-context/],
    [
      'exec',
      kubeconfig({ server: 'https://k' }, { exec: { command: 'gke-gcloud-auth-plugin' } }),
      /exec plugin/,
    ],
    ['http', kubeconfig({ server: 'http://k:8080' }, { token: 'abcd1234' }), /is not an https URL/],
    ['no-user', kubeconfig({ server: 'https://k' }, {}), /has no token, tokenFile or client-certificate/],
    [
      'missing-cert',
      kubeconfig({ server: 'https://k' }, { 'client-certificate': 'nope.pem', 'client-key': 'nope.pem' }),
      /cannot read client-certificate .*nope\.pem/,
    ],
    ['key-alone', kubeconfig({ server: 'https://k' }, { 'client-key-data': b64('x') }), /go together/],
    [
      'basic',
      kubeconfig({ server: 'https://k' }, { username: 'admin', password: 'pw' }),
      /basic authentication/,
    ],
  ];
  for (const [name, text, problem] of cases) {
    const path = join(dir, name);
    await writeFile(path, text);
    await assert.rejects(loadKubeconfig(path), (err: GcfsError) => {
      assert.equal(err.code, 'ERR_CONFIG', name);
      assert.match(err.message, new RegExp(`^kubeconfig ${path}: `), name);
      assert.match(err.message, problem, name);
      assert.match(err.hint ?? '', /--kubeconfig/);
      assert.equal(describeError(err).includes('secret-in-a-bad-line'), false, 'no line of the file');
      return true;
    });
  }
});
