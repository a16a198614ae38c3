// Issue 11's probe against the real processes: one over-long name, sent to each daemon's
// socket, used to hold its event loop for minutes (and with gcfsd's, every FUSE read on
// the node). Each daemon now refuses it at once and goes on serving.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { DownloaderClient } from '@gcfs/downloader';
import { AdminClient, adminSocketPath } from '@gcfs/gcfsd';
import { containerfs as pb } from '@gcfs/proto';
import { ERROR_CODE_TRAILER } from '@gcfs/serving';
import { startGcfsStack, startRegistry } from '@gcfs/testkit';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { pushTestImage } from './cri-images.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
// Only a hang detector: every call here is answered in milliseconds when nothing stalls.
const HANG_MS = 60_000;

function authImage(client: pb.ContainerFSClient, request: Partial<pb.AuthImageRequest>) {
  return new Promise<pb.AuthImageResponse>((resolve, reject) =>
    client.authImage(
      pb.AuthImageRequest.fromPartial(request),
      new Metadata(),
      { deadline: Date.now() + HANG_MS },
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

const refusedAs = (code: ErrorCode) => (err: unknown) => isGcfsError(err, code);
/** The transport's refusal, as the clients report it: a stable code and what happened. */
const tooLarge = (err: unknown) => {
  assert.ok(refusedAs(ErrorCode.InvalidArgument)(err), String(err));
  assert.match(String(err), /the request is larger than the daemon accepts \(RESOURCE_EXHAUSTED: /);
  return true;
};

test('an over-long name is refused by cfsd, the downloader and gcfsd, and none of them stalls', async (t) => {
  const registry = await startRegistry();
  const image = await pushTestImage(registry.host, 'test/small', {
    layers: [{ compression: 'gzip', entries: [{ type: 'file', path: 'hello', content: 'hi\n' }] }],
  });
  const stack = await startGcfsStack({ insecureRegistry: '127.0.0.1' });
  t.after(async () => {
    await stack.stop();
    await registry.stop();
  });

  await t.test(
    'cfsd: AuthImage with a 3 MiB image name is INVALID_ARGUMENT; a valid one right after succeeds',
    async (t) => {
      const client = new pb.ContainerFSClient(stack.cfsdAddress, credentials.createInsecure());
      t.after(() => client.close());
      await assert.rejects(
        authImage(client, { image: `${registry.host}/${'a'.repeat(3 * MIB)}:1` }),
        (err: ServiceError) => {
          assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
          assert.equal(err.metadata.get(ERROR_CODE_TRAILER)[0], ErrorCode.InvalidArgument);
          assert.ok(err.details.length < 1000, 'the refusal quotes a short prefix only');
          return true;
        },
      );
      const valid = await authImage(client, { image, wait: true });
      assert.equal(valid.status, pb.ImageStatus.IMAGE_STATUS_READY, valid.notStreamableReason);
    },
  );

  await t.test(
    'downloader: Download with a 200 KiB image_name is refused while a concurrent call is answered',
    async (t) => {
      const client = new DownloaderClient(join(stack.dir, 'run', 'downloader.sock'), {
        callTimeoutMs: HANG_MS,
      });
      t.after(() => client.close());
      const layerId = `sha256:${'c3'.repeat(32)}`;
      const hostile = (imageName: string) =>
        client.download(
          {
            imageName,
            layerId,
            layerDir: join(stack.cacheDir, `sha256=${'c3'.repeat(32)}`),
            untarDir: join(stack.cacheDir, `untar_${layerId}`),
          },
          { timeoutMs: HANG_MS },
        );
      const [refused, state] = await Promise.allSettled([
        hostile(`${registry.host}/${'a'.repeat(200 * 1024)}:1`),
        client.state(layerId),
      ]);
      assert.equal(refused.status, 'rejected');
      assert.ok(refusedAs(ErrorCode.InvalidArgument)(refused.reason), String(refused.reason));
      assert.equal(state.status === 'fulfilled' && state.value.state, 'absent');
      // Past the socket's message limit the transport refuses it before it is decoded.
      await assert.rejects(hostile(`${registry.host}/${'a'.repeat(3 * MIB)}:1`), tooLarge);
      assert.equal((await client.state(layerId)).state, 'absent');
    },
  );

  await t.test(
    'gcfsd: UnregisterImage with a long name is refused while ls of the mount, in a child, completes',
    async (t) => {
      const admin = new AdminClient(adminSocketPath(stack.mountPoint));
      t.after(() => admin.close());
      // Never read the mount from this process: its FUSE server is another process, but a
      // child keeps a hung read from taking the test runner with it.
      const ls = () =>
        run('ls', [join(stack.mountPoint, 'layers')], { timeout: HANG_MS, killSignal: 'SIGKILL' });
      const [long, listed] = await Promise.allSettled([admin.unregister('z'.repeat(200 * 1024)), ls()]);
      assert.equal(long.status, 'rejected');
      assert.ok(refusedAs(ErrorCode.InvalidArgument)(long.reason), String(long.reason));
      assert.equal(listed.status, 'fulfilled', String((listed as PromiseRejectedResult).reason));
      const [huge, again] = await Promise.allSettled([admin.unregister('z'.repeat(MIB)), ls()]);
      assert.equal(huge.status, 'rejected');
      assert.ok(tooLarge((huge as PromiseRejectedResult).reason));
      assert.equal(again.status, 'fulfilled', String((again as PromiseRejectedResult).reason));
      await admin.register(image);
      assert.deepEqual(
        (await admin.list()).map((i) => i.name),
        [image],
      );
    },
  );
});
