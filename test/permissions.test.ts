// Who may read an image's content on a node (issue 11, section 3): root and the containers
// that run the image. A local user (nobody, uid 65534) probes the real processes' mount,
// layer cache, cfsd store, sockets and recorded pull secrets, both while the image is streamed and once its layers
// are downloaded, while a container running as that same uid still reads its files.

import assert from 'node:assert/strict';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { formatMode } from '@gcfs/core';
import type { ImageSpec } from '@gcfs/image-builder';
import { asNobody, connectAsNobody, makeTempDir, NOBODY, type NobodyProbe } from '@gcfs/testkit';
import { busyboxEntries } from './cri-images.js';
import { streamingNode } from './streaming-stack.js';

/** One layer with a world-readable file and a root-only one; the image runs as nobody. */
const NOBODY_IMAGE: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'], user: `${NOBODY}:${NOBODY}` },
  layers: [
    {
      entries: [
        ...busyboxEntries(),
        { type: 'dir', path: 'app', mode: 0o755 },
        { type: 'file', path: 'app/message', mode: 0o644, content: 'hello nobody\n' },
        { type: 'file', path: 'app/secret', mode: 0o600, content: 'root only\n' },
      ],
    },
  ],
};
const SCRIPT = 'cat /app/message; cat /app/secret 2>&1 || echo secret-denied';
const EXPECTED = ['hello nobody', "cat: can't open '/app/secret': Permission denied", 'secret-denied'];

async function assertDenied(what: string, probe: Promise<NobodyProbe>): Promise<void> {
  const { ok, output } = await probe;
  assert.equal(ok, false, `nobody could ${what}: ${output}`);
  assert.match(output, /Permission denied/, `nobody could not ${what}, but not for lack of permission`);
}

async function modeOf(path: string): Promise<string> {
  return formatMode((await stat(path)).mode & 0o7777);
}

test('nobody reads no image content on a node (mount, layer cache, cfsd store, sockets), streamed or downloaded; a container running as nobody still reads its files', async (t) => {
  // World-traversable dirs made beforehand, as /run, /var/lib, systemd's RuntimeDirectory=
  // and a DaemonSet's hostPath make them (0755), and a umask that takes nothing away.
  const temp = await makeTempDir('gcfs-perms-');
  const dir = temp.path;
  const run = join(dir, 'run');
  const store = join(dir, 'cfsd-store');
  const snapshotterRoot = join(dir, 'snapshotter');
  for (const path of [run, store, join(snapshotterRoot, 'layers')]) await mkdir(path, { recursive: true });
  for (const path of [dir, run, store, snapshotterRoot, join(snapshotterRoot, 'layers')])
    await chmod(path, 0o755);
  // Every process this test starts (the downloader too, later) inherits it.
  const umask = process.umask(0);
  t.after(() => process.umask(umask));
  let node: Awaited<ReturnType<typeof streamingNode>>;
  try {
    node = await streamingNode(
      t,
      { 'test/nobody': NOBODY_IMAGE },
      { downloader: false, dir, keychain: true },
    );
  } finally {
    // After streamingNode's own hook, which unmounts: the mount must be gone before removal.
    t.after(() => temp.cleanup());
  }
  const { cri, stack, refs } = node;
  const image = refs['test/nobody']!;
  // Through the keychain, with a pull secret (the open registry does not ask for it).
  await node.keychain!.pullImage(image, 60_000, { username: 'nobody-test', password: 'perms-Secret-1' });
  const pod = await cri.runPodSandbox({ name: 'nobody', logDirectory: node.logDirectory });
  assert.deepEqual((await node.run(pod, 'streamed', image, SCRIPT)).lines, EXPECTED);

  const streamed = await node.imageLinks('test/nobody');
  const layer = basename(streamed?.links[0] ?? '');
  assert.match(layer, /^sha256=/, 'the layer is streamed from the mount');
  const streamedFile = join(stack.mountPoint, 'layers', layer, 'app/message');
  await assertDenied('list the mount', asNobody('ls', stack.mountPoint));
  await assertDenied('list the layers', asNobody('ls', join(stack.mountPoint, 'layers')));
  await assertDenied('read a streamed 0644 file', asNobody('head', '-c4', streamedFile));
  const stored = join(store, 'layers', 'sha256', layer.slice('sha256='.length));
  await assertDenied(
    "read the layer's blocks in cfsd's store",
    asNobody('head', '-c4', join(stored, 'blocks')),
  );
  await assertDenied("list cfsd's store", asNobody('ls', store));

  // The downloader arrives: the layer lands in the cache, the image's link switches to it.
  await stack.startDownloader();
  await node.untilDownloaded('test/nobody');
  assert.deepEqual((await node.run(pod, 'downloaded', image, SCRIPT)).lines, EXPECTED);
  await assertDenied('read a downloaded file through the mount', asNobody('head', '-c4', streamedFile));
  await assertDenied(
    'read a downloaded file in the layer cache',
    asNobody('head', '-c4', join(stack.cacheDir, layer, 'app/message')),
  );
  await assertDenied('list the layer cache', asNobody('ls', stack.cacheDir));
  const sockets = ['snapshotter.sock', 'downloader.sock', 'admin.sock', 'keychain.sock'].map((name) =>
    join(run, name),
  );
  for (const socket of sockets)
    assert.equal(await connectAsNobody(socket), 'EACCES', `nobody connects to ${socket}`);

  // The modes decided (docs/operations.md), whatever the umask and the dirs found.
  const modes: Record<string, string> = {};
  for (const path of [
    run,
    stack.mountPoint,
    stack.snapshotterRoot,
    stack.cacheDir,
    join(dir, 'gcfsd'),
    join(dir, 'gcfsd', 'images_in_use.db'),
    join(dir, 'gcfsd', 'keychain.json'),
    store,
    join(store, 'lock'),
    join(stored, 'blocks'),
    ...sockets,
  ])
    modes[path.slice(dir.length + 1)] = await modeOf(path);
  assert.deepEqual(modes, {
    run: '0700',
    'run/mnt': '0500',
    snapshotter: '0700',
    'snapshotter/layers': '0700',
    gcfsd: '0700',
    'gcfsd/images_in_use.db': '0600',
    'gcfsd/keychain.json': '0600',
    'cfsd-store': '0700',
    'cfsd-store/lock': '0600',
    [`cfsd-store/layers/sha256/${layer.slice('sha256='.length)}/blocks`]: '0600',
    'run/snapshotter.sock': '0600',
    'run/downloader.sock': '0600',
    'run/admin.sock': '0600',
    'run/keychain.sock': '0600',
  });
  const logs = await stack.logs();
  assert.match(logs.gcfsd, new RegExp(`Tightened permissions of ${run} from 0755 to 0700`));
  assert.match(logs.gcfsd, new RegExp(`Tightened permissions of ${snapshotterRoot} from 0755 to 0700`));
  assert.match(logs.cfsd, new RegExp(`Tightened permissions of ${store} from 0755 to 0700`));
});
