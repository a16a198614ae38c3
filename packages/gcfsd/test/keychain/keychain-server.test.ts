// The keychain socket against a small stand-in for containerd's CRI ImageService (the
// end-to-end suite in test/keychain.test.ts drives a real containerd): what is forwarded,
// what is recorded, statuses, deadlines, and the socket's own rules.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createLogger } from '@gcfs/core';
import { cri, gcfsdKeychain } from '@gcfs/proto';
import { bindGrpcUnixSocket, stopGrpc } from '@gcfs/serving';
import { tempDirFor } from '@gcfs/testkit';
import { credentials, Metadata, Server, type ServiceError, status } from '@grpc/grpc-js';
import { serveKeychain } from '../../src/keychain/keychain-server.js';
import { RecordedCredentials } from '../../src/keychain/recorded-credentials.js';

const PASSWORD = 'kc-Unit-Passw0rd';
const execFileAsync = promisify(execFile);
const LIST = cri.ListImagesRequest.fromPartial({});

/** A CRI ImageService that answers from a script, and remembers what it was sent. */
async function fakeContainerd(t: TestContext, socket: string) {
  const pulls: cri.PullImageRequest[] = [];
  const cancelled: string[] = [];
  const server = new Server();
  const handlers: cri.ImageServiceServer = {
    pullImage: (call, callback) => {
      pulls.push(call.request);
      if (call.request.auth?.password === 'wrong') {
        const trailers = new Metadata();
        trailers.set('containerd-detail', 'denied');
        callback({ code: status.UNKNOWN, details: 'failed to pull: 401 Unauthorized', metadata: trailers });
        return;
      }
      callback(null, { imageRef: 'sha256:abc' });
    },
    listImages: (_call, callback) =>
      callback(
        null,
        cri.ListImagesResponse.fromPartial({ images: [{ id: 'sha256:abc', repoTags: ['r/app:v1'] }] }),
      ),
    imageStatus: (_call, callback) => callback({ code: status.NOT_FOUND, details: 'no such image' }),
    removeImage: (call, callback) => {
      call.once('cancelled', () => cancelled.push('removeImage'));
      setTimeout(() => callback(null, {}), 5_000).unref();
    },
    imageFsInfo: (_call, callback) => callback(null, cri.ImageFsInfoResponse.fromPartial({})),
  };
  server.addService(cri.ImageServiceService, handlers);
  await bindGrpcUnixSocket(server, socket);
  t.after(() => stopGrpc(server, 100, socket));
  return { pulls, cancelled };
}

async function keychainNode(
  t: TestContext,
  options: { containerd?: boolean; prepare?: (socketPath: string) => Promise<void> } = {},
) {
  const dir = await tempDirFor(t);
  const containerdSocket = join(dir.path, 'containerd', 'containerd.sock');
  const fake = options.containerd === false ? undefined : await fakeContainerd(t, containerdSocket);
  const log = new PassThrough();
  let logged = '';
  log.on('data', (chunk: Buffer) => {
    logged += chunk.toString();
  });
  const store = await RecordedCredentials.open({
    path: join(dir.path, 'gcfsd', 'keychain.json'),
    ttlMs: 3_600_000,
    logger: createLogger({ level: 'fatal' }),
  });
  const socketPath = join(dir.path, 'run', 'keychain.sock');
  await options.prepare?.(socketPath);
  const keychain = await serveKeychain({
    socketPath,
    containerdAddress: containerdSocket,
    credentials: store,
    logger: createLogger({ destination: log, level: 'debug' }),
  });
  const target = `unix:${socketPath}`;
  const images = new cri.ImageServiceClient(target, credentials.createInsecure());
  const updates = new gcfsdKeychain.KeychainClient(target, credentials.createInsecure());
  t.after(async () => {
    images.close();
    updates.close();
    await keychain.stop();
  });
  return { fake, store, socketPath, images, updates, logs: () => logged };
}

/** Call a generated client's unary method with a deadline; its error or answer. */
function call<Res>(
  method: (
    req: never,
    md: Metadata,
    opts: { deadline: number },
    cb: (err: ServiceError | null, res: Res) => void,
  ) => unknown,
  request: unknown,
  deadlineMs = 5_000,
): Promise<{ err: ServiceError | null; res: Res; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    method(request as never, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
      resolve({ err, res, ms: Date.now() - started }),
    );
  });
}

describe('keychain socket', () => {
  it('forwards PullImage unchanged and records its auth for the repository; the log names the image, never the secret', async (t) => {
    const node = await keychainNode(t);
    const request = cri.PullImageRequest.fromPartial({
      image: { image: 'r.example:5000/team/app:v1' },
      auth: { username: 'alice', password: PASSWORD },
      sandboxConfig: { metadata: { name: 'pod' } },
    });
    const pulled = await call(node.images.pullImage.bind(node.images), request);
    assert.equal(pulled.err, null);
    assert.equal(pulled.res.imageRef, 'sha256:abc');
    assert.deepEqual(node.fake!.pulls, [request], 'containerd got the very same request');
    assert.deepEqual(node.store.get(`r.example:5000/team/app@sha256:${'d'.repeat(64)}`), {
      username: 'alice',
      password: PASSWORD,
    });
    assert.match(node.logs(), /Received UpdateCreds request for image r\.example:5000\/team\/app:v1/);
    assert.equal(node.logs().includes(PASSWORD), false);
  });

  it('takes what containerd takes: a pull whose pod has 300 KiB of annotations goes through', async (t) => {
    const node = await keychainNode(t);
    const request = cri.PullImageRequest.fromPartial({
      image: { image: 'r.example/app:v1' },
      sandboxConfig: {
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'a'.repeat(300 << 10) },
      },
    });
    assert.equal((await call(node.images.pullImage.bind(node.images), request)).err, null);
    assert.equal(node.fake!.pulls.length, 1);
  });

  it("answers a failed pull with containerd's status, message and trailers, and forgets the credential that failed", async (t) => {
    const node = await keychainNode(t);
    const good = cri.PullImageRequest.fromPartial({
      image: { image: 'r.example/app:v1' },
      auth: { username: 'alice', password: PASSWORD },
    });
    assert.equal((await call(node.images.pullImage.bind(node.images), good)).err, null);
    const bad = cri.PullImageRequest.fromPartial({
      image: { image: 'r.example/app:v2' },
      auth: { username: 'alice', password: 'wrong' },
    });
    const { err } = await call(node.images.pullImage.bind(node.images), bad);
    assert.equal(err?.code, status.UNKNOWN);
    assert.equal(err?.details, 'failed to pull: 401 Unauthorized');
    assert.deepEqual(err?.metadata.get('containerd-detail'), ['denied']);
    assert.equal(node.store.get('r.example/app:v1')?.password, PASSWORD, 'the earlier one is back');

    const missing = await call(
      node.images.imageStatus.bind(node.images),
      cri.ImageStatusRequest.fromPartial({ image: { image: 'x' } }),
    );
    assert.equal(missing.err?.code, status.NOT_FOUND);
    assert.equal(missing.err?.details, 'no such image');
    const listed = await call(node.images.listImages.bind(node.images), LIST);
    assert.deepEqual(
      listed.res.images.map((image: cri.Image) => image.repoTags),
      [['r/app:v1']],
    );
  });

  it("propagates the caller's deadline: a slow containerd fails the call in time, and its call is cancelled", async (t) => {
    const node = await keychainNode(t);
    const { err, ms } = await call(
      node.images.removeImage.bind(node.images),
      cri.RemoveImageRequest.fromPartial({ image: { image: 'x' } }),
      300,
    );
    assert.equal(err?.code, status.DEADLINE_EXCEEDED);
    assert.ok(ms < 1_500, `answered after ${ms} ms`);
    for (let i = 0; i < 40 && node.fake!.cancelled.length === 0; i++) await delay(50);
    assert.deepEqual(node.fake!.cancelled, ['removeImage']);
  });

  it('serves without containerd: calls fail fast with UNAVAILABLE, UpdateCreds still records', async (t) => {
    const node = await keychainNode(t, { containerd: false });
    for (const attempt of [1, 2]) {
      const { err, ms } = await call(node.images.listImages.bind(node.images), LIST, 10_000);
      assert.equal(err?.code, status.UNAVAILABLE, `attempt ${attempt}`);
      assert.ok(ms < 2_000, `attempt ${attempt} answered after ${ms} ms`);
    }
    const update = gcfsdKeychain.UpdateCredsRequest.fromPartial({
      image: 'r.example/solo:v1',
      credentials: { username: 'bob', password: PASSWORD },
    });
    assert.equal((await call(node.updates.updateCreds.bind(node.updates), update)).err, null);
    assert.equal(node.store.get('r.example/solo:latest')?.username, 'bob');
    assert.match(node.logs(), /Received UpdateCreds request for image r\.example\/solo:v1/);
    const cleared = gcfsdKeychain.UpdateCredsRequest.fromPartial({
      image: 'r.example/solo:v1',
      credentials: {},
    });
    assert.equal((await call(node.updates.updateCreds.bind(node.updates), cleared)).err, null);
    assert.equal(node.store.get('r.example/solo:v1'), undefined);
    const bad = await call(
      node.updates.updateCreds.bind(node.updates),
      gcfsdKeychain.UpdateCredsRequest.fromPartial({ image: 'UPPER//case' }),
    );
    assert.equal(bad.err?.code, status.INVALID_ARGUMENT);
    assert.equal(node.logs().includes(PASSWORD), false);
  });

  it('is root-only (0600 in a 0700 dir), replaces a stale socket and refuses a live one', async (t) => {
    const node = await keychainNode(t, {
      // A dead process's socket: bound, never closed, nobody answering on it.
      prepare: async (socketPath) => {
        await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
        await execFileAsync('python3', [
          '-c',
          'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
          socketPath,
        ]);
      },
    });
    assert.equal((await call(node.images.listImages.bind(node.images), LIST)).err, null, 'serving on it');
    assert.equal((await stat(node.socketPath)).mode & 0o777, 0o600);
    assert.equal((await stat(dirname(node.socketPath))).mode & 0o777, 0o700);
    await assert.rejects(
      serveKeychain({
        socketPath: node.socketPath,
        containerdAddress: '/nonexistent/containerd.sock',
        credentials: node.store,
        logger: createLogger({ level: 'fatal' }),
      }),
      /another process is serving/,
    );
  });
});
