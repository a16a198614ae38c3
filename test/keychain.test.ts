// End to end: private images streamed with the pod's own pull secret. kubelet's image service
// is gcfsd's keychain socket (--image-service-endpoint), its runtime service containerd 1.6;
// the registry wants a token (distribution's token auth) for everything but the pause image.

import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { ErrorCode, type GcfsError, isGcfsError } from '@gcfs/core';
import { AdminClient } from '@gcfs/gcfsd';
import type { ImageSpec } from '@gcfs/image-builder';
import type { cri } from '@gcfs/proto';
import type { RegistryOptions } from '@gcfs/testkit';
import { busyboxEntries } from './cri-images.js';
import { eventually, streamingNode } from './streaming-stack.js';

const UNAVAILABLE = 14;
const ALICE = { username: 'alice', password: 'Keychain-E2e-Passw0rd' };
/** What kubelet sends for a dockerconfigjson secret: `auth`, base64 of user:password. */
const ALICE_AUTH = Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64');
const PRIVATE_REGISTRY: RegistryOptions = {
  auth: 'token',
  users: [ALICE],
  // containerd pulls the sandbox image itself, without a pod's secret.
  acl: {
    'test/pause': { pull: ['*'], push: ['alice'] },
    'public/*': { pull: ['*'], push: ['alice'] },
    '*': { '*': ['alice'] },
  },
};

const appImage = (message: string): ImageSpec => ({
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    { entries: busyboxEntries() },
    {
      entries: [
        { type: 'dir', path: 'app', mode: 0o755 },
        { type: 'file', path: 'app/message', mode: 0o644, content: `${message}\n` },
      ],
    },
  ],
});
const IMAGES = {
  'private/app': appImage('private hello'),
  'private/other': appImage('other private'),
  'public/app': appImage('public hello'),
};

/** The node: the private registry, gcfsd with its keychain, no downloader (layers stay streamed). */
const privateNode = (t: TestContext) =>
  streamingNode(t, IMAGES, { registry: PRIVATE_REGISTRY, keychain: true, downloader: false });

/** The CRI status of a failed call, as kubelet sees it. */
async function criFailure(call: Promise<unknown>): Promise<{ code: unknown; details: string }> {
  const err = await call.then(
    () => assert.fail('the call succeeded'),
    (e: GcfsError) => e,
  );
  return { code: err.details?.grpcCode, details: (err.cause as { details: string }).details };
}

test('a private image pulled through the keychain socket with the pod secret streams; without it or with a wrong one containerd fails as it does alone; the secret reaches no log, metric or error', async (t) => {
  const node = await privateNode(t);
  const { cri: direct, keychain: kubelet, stack, refs } = node;
  const admin = new AdminClient(stack.adminSocket);
  t.after(() => admin.close());
  const image = refs['private/app']!;
  const errors: string[] = [];

  // No secret, then a wrong one: the same failure through the keychain as on containerd's socket.
  for (const auth of [undefined, { username: 'alice', password: 'not-the-password' }]) {
    const proxied = await criFailure(kubelet!.pullImage(image, 60_000, auth));
    const alone = await criFailure(direct.pullImage(image, 60_000, auth));
    assert.deepEqual(proxied, alone);
    errors.push(proxied.details);
  }
  assert.equal(await stack.metric('gcfsd_remote_snapshots_total'), 0, 'nothing streamed');
  assert.equal(await node.imageLinks('private/app'), undefined);

  await kubelet!.pullImage(image, 120_000, {
    auth: ALICE_AUTH,
    serverAddress: `http://${image.split('/')[0]}`,
  });
  assert.ok((await stack.metric('gcfsd_remote_snapshots_total')) >= 2, 'both layers committed as remote');
  const content = await node.ctr('content', 'ls', '-q');
  const links = await node.imageLinks('private/app');
  assert.ok(
    links?.links.every((link) => link.startsWith('../../layers/')),
    'streamed from cfsd',
  );
  const manifest = JSON.parse(
    await node.ctr('content', 'get', (await direct.imageStatus(image))!.repoDigests[0]!.split('@')[1]!),
  );
  for (const layer of manifest.layers as Array<{ digest: string }>) {
    assert.equal(content.includes(layer.digest), false, 'no layer blob in containerd');
  }
  const gcfsdLog = (await stack.logs()).gcfsd;
  assert.match(gcfsdLog, new RegExp(`Received UpdateCreds request for image ${image}`));
  assert.match(gcfsdLog, /msg="Registering image \S+\/private\/app@sha256:\w+" credential=keychain/);
  // The pull with a wrong secret recorded it too (then put back what was there), this one stays.
  assert.equal(await stack.metric('gcfsd_keychain_updates_total', 'source="pull_image"'), 2);
  const pod = await direct.runPodSandbox({ name: 'private', logDirectory: node.logDirectory });
  const run = await node.run(pod, 'app', image, 'cat /app/message');
  assert.deepEqual([run.exitCode, run.lines], [0, ['private hello']]);

  // Alice's secret was given for private/app: it does not open private/other through cfsd.
  const other = await admin.register(refs['private/other']!).then(
    () => assert.fail('private/other was registered'),
    (err: unknown) => err,
  );
  assert.ok(
    isGcfsError(other, ErrorCode.Unauthorized) || isGcfsError(other, ErrorCode.Denied),
    String(other),
  );
  errors.push((other as Error).message);

  // Everything else goes through unchanged.
  const pause = (await direct.listImages()).find((i) => i.repoTags.some((tag) => tag.includes('test/pause')));
  assert.ok(pause, 'the sandbox image is listed');
  const byId = (images: Array<{ id: string }>) => images.sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(byId(await kubelet!.listImages()), byId(await direct.listImages()));
  assert.deepEqual(await kubelet!.imageStatus(image), await direct.imageStatus(image));
  assert.deepEqual(await kubelet!.imageStatus('127.0.0.1:1/none:v1'), undefined);
  // Each answer is stamped with the time containerd took its figures: compare the figures.
  const figures = (info: cri.ImageFsInfoResponse) =>
    info.imageFilesystems.map(({ timestamp: _, ...rest }) => rest);
  assert.deepEqual(figures(await kubelet!.imageFsInfo()), figures(await direct.imageFsInfo()));
  const publicImage = refs['public/app']!;
  await kubelet!.pullImage(publicImage);
  assert.ok(await node.imageLinks('public/app'), 'a public image still streams');
  await kubelet!.removeImage(publicImage);
  assert.equal(await direct.imageStatus(publicImage), undefined, 'removed through the keychain');

  const logs = await stack.logs();
  const metrics = await stack.metricsText();
  const collected = [logs.gcfsd, logs.cfsd, logs.downloader, metrics, ...errors].join('\n');
  for (const secret of [ALICE.password, ALICE_AUTH, 'not-the-password']) {
    assert.equal(collected.includes(secret), false, 'a secret is in what the processes wrote');
  }
  // No registry token (a JWT) either.
  assert.doesNotMatch(collected, /eyJ[\w-]{10,}\.eyJ[\w-]{10,}/);
});

test('gcfsd killed while a private image streams: after the restart new containers start from it and its layers download, without a new pull; containerd down, the keychain answers UNAVAILABLE at once', async (t) => {
  const node = await privateNode(t);
  const { cri: direct, keychain: kubelet, stack, refs } = node;
  const image = refs['private/app']!;
  await kubelet!.pullImage(image, 120_000, ALICE);
  const pod = await direct.runPodSandbox({ name: 'crash', logDirectory: node.logDirectory });
  assert.deepEqual((await node.run(pod, 'before', image, 'cat /app/message')).lines, ['private hello']);
  // Root's alone, beside the images-in-use DB.
  const saved = join(stack.dir, 'gcfsd', 'keychain.json');
  assert.equal((await stat(saved)).mode & 0o777, 0o600);

  await stack.restartGcfsd({ crash: true });
  // The killed gcfsd left its socket: the new one replaced it and serves on it.
  assert.ok((await kubelet!.listImages()).some((listed) => listed.repoTags.includes(image)));
  // A new pod, as kubelet would start: the old one's pause process may have died with the mount.
  // containerd reconnects to the restarted snapshotter after its own backoff, as kubelet retries.
  const next = await eventually('RunPodSandbox', () =>
    direct
      .runPodSandbox({ name: 'after-crash', logDirectory: node.logDirectory })
      .catch((err: GcfsError) => (err.details?.grpcCode === UNAVAILABLE ? undefined : Promise.reject(err))),
  );
  assert.deepEqual((await node.run(next, 'after', image, 'cat /app/message')).lines, ['private hello']);
  await stack.startDownloader();
  await node.untilDownloaded('private/app');
  const logs = (await stack.logs()).gcfsd;
  assert.match(logs, /Restored image authorized with cfsd/);
  assert.equal(logs.match(/Received UpdateCreds request/g)?.length, 1, 'no second pull');
  assert.equal(logs.includes(ALICE.password), false);

  await node.containerd.stop();
  const started = Date.now();
  const down = await criFailure(kubelet!.listImages());
  assert.equal(down.code, UNAVAILABLE, `UNAVAILABLE, not ${String(down.code)}: ${down.details}`);
  assert.ok(Date.now() - started < 5_000, 'within the deadline');
});
