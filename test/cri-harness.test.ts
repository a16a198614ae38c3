import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { cri } from '@gcfs/proto';
import { Snapshotter, serveSnapshots } from '@gcfs/snapshotter';
import {
  type ContainerdOptions,
  CriClient,
  listProcesses,
  readCriLog,
  startContainerd,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { BUSYBOX_IMAGE, PAUSE_IMAGE, pushTestImage } from './cri-images.js';

/** A registry with the pause and busybox images, containerd pulling from it, a CRI client. */
async function criSetup(
  t: TestContext,
  snapshotter: Pick<ContainerdOptions, 'snapshotter' | 'proxySnapshotters'> = {},
) {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const sandboxImage = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE);
  const image = await pushTestImage(registry.host, 'test/busybox', BUSYBOX_IMAGE);
  const containerd = await startContainerd({ registryHost: registry.host, sandboxImage, ...snapshotter });
  t.after(() => containerd.stop());
  const client = new CriClient(containerd.address);
  t.after(() => client.close());
  const logs = await tempDirFor(t, 'gcfs-cri-logs-');
  return { containerd, client, image, logDirectory: logs.path };
}

/** Command lines of live processes that contain `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  return (await listProcesses())
    .filter((p) => p.cmdline.includes(needle))
    .map((p) => p.cmdline.replaceAll('\0', ' '));
}

test('containerd 1.6 through CRI: pull, host-network pod, containers, logs, exit codes, removal', async (t) => {
  const { containerd, client, image, logDirectory } = await criSetup(t);
  const version = await client.version();
  assert.equal(version.runtimeName, 'containerd');
  assert.equal(version.runtimeApiVersion, 'v1');

  const imageRef = await client.pullImage(image);
  assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
  const status = await client.imageStatus(image);
  assert.equal(status?.id, imageRef);
  assert.ok(status?.repoTags.includes(image));

  const pod = await client.runPodSandbox({ name: 'hello', logDirectory });
  const container = await client.createContainer(pod, {
    name: 'hello',
    image,
    command: ['/bin/sh', '-c'],
    args: ['echo hello-from-cri; echo "$GREETING" >&2; exit 3'],
    env: { GREETING: 'from-env' },
  });
  await client.startContainer(container.id);
  const exited = await client.waitForExit(container.id);
  assert.equal(exited.exitCode, 3);
  assert.equal(exited.logPath, container.logFile);
  assert.deepEqual((await readCriLog(container.logFile)).toSorted(), ['from-env', 'hello-from-cri']);

  // A second container in the same pod: exit code 0 and its own log.
  const second = await client.createContainer(pod, { name: 'second', image, command: ['echo', 'again'] });
  await client.startContainer(second.id);
  assert.equal((await client.waitForExit(second.id)).exitCode, 0);
  assert.deepEqual(await readCriLog(second.logFile), ['again']);

  // StopContainer with no grace period kills a running container.
  const sleeper = await client.createContainer(pod, { name: 'sleeper', image, command: ['sleep', '1000'] });
  await client.startContainer(sleeper.id);
  await client.stopContainer(sleeper.id, 0);
  assert.equal((await client.waitForExit(sleeper.id)).exitCode, 137);

  await client.removeContainer(second.id);
  await client.removePod(pod.id);
  await assert.rejects(client.containerStatus(container.id), /not found|does not exist/);
  await client.removeImage(image);
  assert.equal(await client.imageStatus(image), undefined);

  await containerd.stop();
  assert.equal(existsSync(containerd.stateDir), false);
  assert.deepEqual(await processesWith(containerd.address), []);
});

test('stop() with a pod and a container still running leaves nothing behind', async (t) => {
  const { containerd, client, image, logDirectory } = await criSetup(t);
  await client.pullImage(image);
  const pod = await client.runPodSandbox({ name: 'left-running', logDirectory });
  const marker = `${process.pid}${Date.now() % 100_000}`;
  const container = await client.createContainer(pod, { name: 'sleeper', image, command: ['sleep', marker] });
  await client.startContainer(container.id);
  assert.equal((await client.containerStatus(container.id)).state, cri.ContainerState.CONTAINER_RUNNING);
  assert.equal((await processesWith(`sleep\0${marker}`)).length, 1);
  const shimAddress = await readFile(
    join(containerd.stateDir, 'io.containerd.runtime.v2.task/k8s.io', pod.id, 'address'),
    'utf8',
  );
  const shimSocket = shimAddress.replace(/^unix:\/\//, '');
  assert.ok(existsSync(shimSocket));

  await containerd.stop();
  assert.deepEqual(await processesWith(containerd.address), []);
  assert.deepEqual(await processesWith(`sleep\0${marker}`), []);
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  assert.equal(mountinfo.includes(containerd.rootDir), false);
  assert.equal(existsSync(containerd.rootDir), false);
  for (const hierarchy of ['pids', 'memory']) {
    assert.equal(existsSync(join('/sys/fs/cgroup', hierarchy, 'k8s.io', container.id)), false);
    assert.equal(existsSync(join('/sys/fs/cgroup', hierarchy, 'k8s.io', pod.id)), false);
  }
  assert.equal(existsSync(shimSocket), false);
});

test('a proxy snapshotter named in the config serves CRI pulls and containers', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cri-proxy-');
  const snapshotter = await Snapshotter.open(join(dir.path, 'root'));
  const served = await serveSnapshots(snapshotter, join(dir.path, 'snapshotter.sock'));
  t.after(async () => {
    await served.stop();
    await snapshotter.close();
  });
  const { client, image, logDirectory } = await criSetup(t, {
    snapshotter: 'gcfs-test',
    proxySnapshotters: { 'gcfs-test': join(dir.path, 'snapshotter.sock') },
  });
  await client.pullImage(image);
  // disable_snapshot_annotations = false: the layer's snapshot carries CRI's labels.
  const layers = snapshotter
    .list()
    .filter((info) => info.labels['containerd.io/snapshot/cri.image-ref'] === image);
  assert.equal(layers.length, 1);
  assert.match(
    layers[0]?.labels['containerd.io/snapshot/cri.manifest-digest'] ?? '',
    /^sha256:[0-9a-f]{64}$/,
  );
  // The sandbox image went through it too: committed layers and the pod's active snapshot.
  const pod = await client.runPodSandbox({ name: 'proxied', logDirectory });
  const container = await client.createContainer(pod, {
    name: 'hello',
    image,
    command: ['echo', 'via-proxy'],
  });
  await client.startContainer(container.id);
  assert.equal((await client.waitForExit(container.id)).exitCode, 0);
  assert.deepEqual(await readCriLog(container.logFile), ['via-proxy']);
  assert.ok((await readdir(join(dir.path, 'root', 'snapshots'))).length >= 3);
  await client.removePod(pod.id);
});

test('startContainerd fails with containerd output when containerd cannot start', async () => {
  await assert.rejects(
    startContainerd({ registryHost: '127.0.0.1:9', sandboxImage: 'x', extraConfig: '[broken' }),
    (err: Error) => /containerd: exited before it was ready/.test(err.message) && /toml/i.test(err.message),
  );
});

test('restart(): a running container survives containerd restarting and the pod takes new containers', async (t) => {
  const { containerd, client, image, logDirectory } = await criSetup(t);
  await client.pullImage(image);
  const pod = await client.runPodSandbox({ name: 'restarted', logDirectory });
  const sleeper = await client.createContainer(pod, { name: 'sleeper', image, command: ['sleep', '1000'] });
  await client.startContainer(sleeper.id);

  await containerd.restart();
  assert.equal((await client.containerStatus(sleeper.id)).state, cri.ContainerState.CONTAINER_RUNNING);
  const after = await client.createContainer(pod, {
    name: 'after',
    image,
    command: ['echo', 'after-restart'],
  });
  await client.startContainer(after.id);
  assert.equal((await client.waitForExit(after.id)).exitCode, 0);
  assert.deepEqual(await readCriLog(after.logFile), ['after-restart']);
  await client.removePod(pod.id);
});
