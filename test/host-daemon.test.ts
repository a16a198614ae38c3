// gcfsd as systemd runs it on a node (deploy/systemd/gcfsd.service): no in-cluster service
// account, events posted with a kubeconfig (the kubelet's client certificate, or a
// ServiceAccount token), and readiness told to $NOTIFY_SOCKET (Type=notify). A small Python
// receiver stands in for systemd's notify socket (Node has no Unix datagram sockets), an
// HTTPS stand-in for the API server; gcfsd, cfsd and the snapshotter socket are real.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { snapshots } from '@gcfs/proto';
import {
  type KubeApiStandIn,
  type RunningGcfsStack,
  selfSignedCertificate,
  startGcfsStack,
  startKubeApiStandIn,
  tempDirFor,
} from '@gcfs/testkit';
import { credentials } from '@grpc/grpc-js';
import { stringify } from 'yaml';

const GCFSD = fileURLToPath(new URL('../../packages/gcfsd/bin/gcfsd', import.meta.url));

// Receives sd_notify datagrams as systemd does (with the sender's credentials), closes the
// file descriptors systemd-notify's barrier passes, and prints one JSON line per message.
const NOTIFY_RECEIVER = `
import array, json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in fds:
                os.close(fd)
        elif kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload)[0]
    print(json.dumps({"pid": pid, "message": data.decode()}), flush=True)
`;

/** A notify socket at `path`; the messages it received. */
async function notifySocket(t: test.TestContext, path: string) {
  const receiver = spawn('python3', ['-c', NOTIFY_RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => receiver.kill('SIGKILL'));
  const messages: Array<{ pid: number; message: string }> = [];
  const lines = createInterface({ input: receiver.stdout });
  const listening = new Promise<void>((resolve) =>
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as { listening?: true; pid: number; message: string };
      if (parsed.listening) resolve();
      else messages.push(parsed);
    }),
  );
  await Promise.race([listening, once(receiver, 'exit').then(() => assert.fail('notify receiver exited'))]);
  return messages;
}

function kubeconfig(api: KubeApiStandIn, user: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'k8s', cluster: { server: api.url, 'certificate-authority': 'ca.crt' } }],
    contexts: [{ name: 'node', context: { cluster: 'k8s', user: 'me' } }],
    'current-context': 'node',
    users: [{ name: 'me', user }],
  });
}

/** A Prepare as containerd's unpacker sends it, without CRI's image labels: a fallback. */
async function prepareWithoutLabels(stack: RunningGcfsStack): Promise<void> {
  const client = new snapshots.SnapshotsClient(
    `unix:${stack.snapshotterSocket}`,
    credentials.createInsecure(),
  );
  try {
    await new Promise<void>((resolve, reject) =>
      client.prepare(
        snapshots.PrepareSnapshotRequest.fromPartial({
          snapshotter: 'gcfs',
          key: 'extract-1 sha256:aaaa',
          labels: { 'containerd.io/snapshot.ref': `sha256:${'a'.repeat(64)}` },
        }),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  } finally {
    client.close();
  }
}

async function eventually<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('gcfsd with the kubelet’s kubeconfig: tells systemd it is ready, and posts a fallback event as system:node:<node> about that node', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-host-daemon-')).path;
  await mkdir(join(dir, 'pki'), { recursive: true });
  const kubelet = await selfSignedCertificate({
    commonName: 'system:node:node-7',
    organization: 'system:nodes',
  });
  const api = await startKubeApiStandIn({ clientCa: kubelet.certificatePem });
  t.after(() => api.close());
  await writeFile(join(dir, 'ca.crt'), api.ca);
  await writeFile(join(dir, 'pki/kubelet-client-current.pem'), kubelet.certificatePem + kubelet.keyPem);
  const path = join(dir, 'kubelet.conf');
  const pem = 'pki/kubelet-client-current.pem';
  await writeFile(path, kubeconfig(api, { 'client-certificate': pem, 'client-key': pem }));
  const notifyPath = join(dir, 'notify.sock');
  const notified = await notifySocket(t, notifyPath);

  const stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1:9',
    downloader: false,
    gcfsdFlags: [`--kubeconfig=${path}`],
    gcfsdEnv: { NOTIFY_SOCKET: notifyPath, NODE_NAME: '' },
  });
  t.after(() => stack.stop());
  const ready = await eventually('READY=1', () => notified.find((m) => m.message.includes('READY=1')));
  // Credited to gcfsd itself (systemd-notify --pid), as NotifyAccess=main would require.
  const cmdline = await readFile(`/proc/${ready.pid}/cmdline`, 'utf8');
  assert.match(cmdline, /packages\/gcfsd\/bin\/\.\.\/dist\/src\/main\.js\0/);
  assert.ok(cmdline.includes(`--kubeconfig=${path}`), 'the gcfsd of this test');

  await prepareWithoutLabels(stack);
  const posted = await eventually('the event', () => api.events[0]);
  assert.deepEqual(api.refused, []);
  assert.equal(posted.user, 'system:node:node-7');
  assert.equal(posted.namespace, 'default');
  assert.equal(posted.event.reason, 'ImageStreaming');
  assert.equal(posted.event.type, 'Warning');
  assert.match(String(posted.event.message), /is not streamed and is pulled normally \(MissingLabels\)/);
  assert.deepEqual(posted.event.involvedObject, {
    apiVersion: 'v1',
    kind: 'Node',
    name: 'node-7',
    uid: 'node-7',
  });
  const { gcfsd } = await stack.logs();
  assert.match(
    gcfsd,
    /Kubernetes events are posted to the API server" from="kubeconfig \S*kubelet\.conf" .*node=node-7/,
  );
  assert.equal(gcfsd.includes(kubelet.keyPem.split('\n')[1]!), false, 'no key in the log');
});

test('gcfsd with a ServiceAccount token kubeconfig posts as the ServiceAccount about NODE_NAME; a --kubeconfig it cannot use stops it at start', async (t) => {
  const dir = (await tempDirFor(t, 'gcfs-host-token-')).path;
  await mkdir(dir, { recursive: true });
  const token = 'gcfsd-service-account-token-42';
  const api = await startKubeApiStandIn({ tokens: { [token]: 'system:serviceaccount:gcfs:gcfsd' } });
  t.after(() => api.close());
  await writeFile(join(dir, 'ca.crt'), api.ca);
  await writeFile(join(dir, 'token'), `${token}\n`);
  const path = join(dir, 'gcfsd.kubeconfig');
  await writeFile(path, kubeconfig(api, { tokenFile: 'token' }));

  const stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1:9',
    downloader: false,
    gcfsdFlags: [`--kubeconfig=${path}`],
    gcfsdEnv: { NODE_NAME: 'node-by-env' },
  });
  t.after(() => stack.stop());
  await prepareWithoutLabels(stack);
  const posted = await eventually('the event', () => api.events[0]);
  assert.equal(posted.user, 'system:serviceaccount:gcfs:gcfsd');
  assert.equal((posted.event.involvedObject as { name: string }).name, 'node-by-env');
  assert.equal((await stack.logs()).gcfsd.includes(token), false, 'no token in the log');

  // An exec plugin (as on EKS or GKE): refused before gcfsd mounts or listens anywhere.
  const exec = join(dir, 'exec.kubeconfig');
  await writeFile(exec, kubeconfig(api, { exec: { command: 'aws-iam-authenticator' } }));
  const mountPoint = join(dir, 'run/mnt');
  const failed = await new Promise<{ code: number | null; output: string }>((resolve) =>
    execFile(
      GCFSD,
      [
        `--kubeconfig=${exec}`,
        `--mount_point=${mountPoint}`,
        '--addr=127.0.0.1:9',
        '--snapshotter_uds_path=',
      ],
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err.code as number) ?? null) : 0, output: stdout + stderr }),
    ),
  );
  assert.equal(failed.code, 1);
  assert.match(failed.output, /gcfsd could not start/);
  assert.match(failed.output, /exec plugin \(aws-iam-authenticator\), which gcfsd does not run/);
  assert.match(failed.output, /give --kubeconfig a kubeconfig/);
  await assert.rejects(readFile(join(dir, 'run/admin.sock')), { code: 'ENOENT' });
});
