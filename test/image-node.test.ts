// The container image really runs the node. scripts/build-image builds gcfs's image (cached
// under /var/tmp) and pushes it to a real registry; a "system" containerd runs the gcfsd
// DaemonSet's pod from it through CRI as kubelet would, read from deploy/kubernetes (mounts
// with their propagation, privileges, arguments; only host paths, host ports and --addr
// substituted); a second containerd, configured as a node is (deploy/containerd/gcfs.toml
// imported, CRI set to the gcfs snapshotter), streams a pod's image through that gcfsd. Then the DaemonSet
// pod is replaced as a rollout does (preStop hook, StopContainer with the grace period, a new
// pod from the image), and the test records what the running pods see.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { imageDirName } from '@gcfs/core';
import { cleanStaleMount } from '@gcfs/fuse';
import { seededSha256 } from '@gcfs/image-builder';
import { cri } from '@gcfs/proto';
import {
  CriClient,
  freePort,
  listProcesses,
  type ManagedProcess,
  makeTempDir,
  type RunningContainerd,
  readCriLog,
  startCfsdProcess,
  startContainerd,
  startRegistry,
} from '@gcfs/testkit';
import { PAUSE_IMAGE, pushTestImage } from './cri-images.js';
import { runDaemonSetPod, substitutePaths } from './daemonset-pod.js';
import { CONTAINERD_DROP_IN, gcfsdDaemonSet, loadManifests } from './deploy-manifests.js';
import {
  BLOB,
  buildAndPushImage,
  contentBlobs,
  DOWNLOADER_PORT,
  GCFSD_PORT,
  mountsUnder,
  probe,
  registryLayers,
  retried,
  sharedBind,
  WORKLOAD,
  writeRegistryHosts,
} from './image-node.js';
import { eventually } from './streaming-stack.js';

const run = promisify(execFile);

test('the image runs the node: gcfsd from the DaemonSet streams pods of a second containerd, and a rollout replaces it', async (t) => {
  const registry = await startRegistry();
  // Everything of the node under one dir, removed by the hook below once nothing is mounted.
  const node = await makeTempDir('gcfs-image-node-');
  const logs = { path: join(node.path, 'logs') };
  await mkdir(logs.path);
  let system: RunningContainerd | undefined;
  let workloads: RunningContainerd | undefined;
  let systemCri: CriClient | undefined;
  let nodeCri: CriClient | undefined;
  let cfsd: ManagedProcess | undefined;
  const mountPoint = join(node.path, 'run/gcfsd/mnt');
  let held: number | undefined;
  let passed = false;
  // One hook, in this order: the pods' overlays go before gcfsd's FUSE mount they stand on.
  t.after(async () => {
    if (held !== undefined) process.kill(held, 'SIGCONT');
    if (!passed) {
      // What the daemons said, for a failure seen only in CI.
      for (const name of await readdir(logs.path).catch(() => [] as string[])) {
        const text = await readFile(join(logs.path, name), 'utf8').catch(() => '');
        t.diagnostic(`${name}:\n${text.split('\n').slice(-40).join('\n')}`);
      }
    }
    nodeCri?.close();
    await workloads?.stop();
    systemCri?.close();
    await system?.stop();
    await cleanStaleMount(mountPoint);
    await run('umount', ['-l', node.path]).catch(() => {});
    await cfsd?.stop();
    await registry.stop();
    if ((await mountsUnder(node.path)).length === 0) await node.cleanup();
  });
  await sharedBind(node.path);

  const image = await buildAndPushImage(registry.host);
  const sandboxImage = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE);
  const workload = await pushTestImage(registry.host, 'test/workload', WORKLOAD);

  // The node: containerd's own config (testkit's) imports the drop-in as shipped, its socket
  // path moved under the test's dir like every host path below.
  const paths: Array<[string, string]> = [
    ['/run/gcfsd', join(node.path, 'run/gcfsd')],
    ['/run/containerd-gcfs-grpc', join(node.path, 'run/containerd-gcfs-grpc')],
    ['/var/lib/containerd/io.containerd.snapshotter.v1.gcfs', join(node.path, 'var/lib/gcfs')],
    ['/etc/containerd/certs.d', join(node.path, 'certs.d')],
  ];
  const dropIn = join(node.path, 'conf.d/gcfs.toml');
  await mkdir(dirname(dropIn), { recursive: true });
  await writeFile(dropIn, substitutePaths(await readFile(CONTAINERD_DROP_IN, 'utf8'), paths));
  workloads = await startContainerd({
    registryHost: registry.host,
    sandboxImage,
    snapshotter: 'gcfs',
    discardUnpackedLayers: true,
    imports: [dropIn],
  });
  const containerdDir = dirname(workloads.address);
  await sharedBind(containerdDir);
  paths.push(['/run/containerd', containerdDir]);
  // The registry speaks plain HTTP: said in containerd's hosts directory, which gcfsd reads.
  await writeRegistryHosts(join(node.path, 'certs.d'), registry.host);

  const cfsdAddress = `127.0.0.1:${await freePort()}`;
  cfsd = await startCfsdProcess({
    address: cfsdAddress,
    store: join(node.path, 'cfsd-store'),
    insecureRegistry: '127.0.0.1',
    logFile: join(logs.path, 'cfsd.log'),
  });

  // The system containerd runs the DaemonSet's pod from the image, as kubelet would.
  system = await startContainerd({ registryHost: registry.host, sandboxImage });
  systemCri = new CriClient(system.address);
  nodeCri = new CriClient(workloads.address);
  await systemCri.pullImage(image.ref);
  const ds = gcfsdDaemonSet(await loadManifests());
  const ports = new Map([
    [GCFSD_PORT, await freePort()],
    [DOWNLOADER_PORT, await freePort()],
  ]);
  const metricsPort = ports.get(GCFSD_PORT)!;
  const substitutions = {
    paths,
    ports,
    cfsdAddress,
    image: image.ref,
    nodeName: hostname(),
    logDirectory: logs.path,
  };
  const startGcfsPod = async () => {
    const pod = await runDaemonSetPod(systemCri!, ds, substitutions);
    await eventually(
      'gcfsd ready (/readyz)',
      async () => ((await probe(metricsPort, '/readyz')) === 200 ? true : undefined),
      120_000,
    );
    return pod;
  };
  const first = await startGcfsPod();
  assert.equal(await probe(metricsPort, '/healthz'), 200);
  const version = await systemCri.execSync(first.containers.gcfsd!, ['gcfsd', '--version'], 10);
  assert.deepEqual(version, {
    exitCode: 0,
    stdout: `gcfsd ${image.version} (commit ${image.revision})\n`,
    stderr: '',
  });
  // gcfsctl is on the image's PATH, and finds the node healthy (as an operator would
  // through kubectl exec).
  const status = await systemCri.execSync(
    first.containers.gcfsd!,
    ['gcfsctl', 'status', `--mount_point=${mountPoint}`],
    30,
  );
  assert.equal(status.exitCode, 0, `${status.stdout}${status.stderr}`);
  // The FUSE mount reached the host through the Bidirectional mount.
  assert.deepEqual(await mountsUnder(mountPoint), [mountPoint]);

  // A pod streamed through the node's containerd: no layer blob, files readable, it runs.
  const startWorkload = async (name: string) => {
    const pod = await retried(`pod ${name}`, () => nodeCri!.runPodSandbox({ name, logDirectory: logs.path }));
    const created = await retried(`container ${name}`, () =>
      nodeCri!.createContainer(pod, {
        name,
        image: workload,
        command: ['/bin/sh', '-c', 'sleep 2147483647'],
      }),
    );
    await nodeCri!.startContainer(created.id);
    return { podId: pod.id, id: created.id };
  };
  const imageDir = async () => {
    const images = (await run('ls', [join(mountPoint, 'images')], { timeout: 10_000 })).stdout.split('\n');
    const entry = images.find((name) => name.includes(`#${imageDirName('test/workload')}@`));
    assert.ok(entry, `no image dir for test/workload in ${images.join(' ')}`);
    return join(mountPoint, 'images', entry);
  };
  const links = async () => {
    const d = await imageDir();
    return Promise.all(['0', '1'].map((i) => readlink(join(d, i))));
  };
  // A pod that starts while its layers are streamed: the downloader is held (SIGSTOP, as a
  // big layer on a slow link would hold it) until the pod runs, so that its overlay is
  // mounted over the FUSE tree whatever the machine's speed. gcfsd waits for it meanwhile.
  const downloaderPid = (await listProcesses()).find(
    (p) => p.cmdline.includes('\0--downloader\0') && p.cmdline.includes(node.path),
  )?.pid;
  assert.ok(downloaderPid, 'the downloader process of the gcfsd pod');
  process.kill(downloaderPid, 'SIGSTOP');
  held = downloaderPid;
  await retried('the pull of the workload through gcfs', () => nodeCri!.pullImage(workload));
  const streamed = await startWorkload('streamed');
  assert.ok(
    (await links()).every((link) => link.startsWith('../../layers/')),
    (await links()).join(' '),
  );
  const cat = (id: string, path: string) => nodeCri!.execSync(id, ['/bin/cat', path], 30);
  const blobSum = (id: string) => nodeCri!.execSync(id, ['/bin/busybox', 'sha256sum', '/data/blob'], 60);
  const expectedBlob = `${await seededSha256(BLOB)}  /data/blob\n`;
  assert.equal((await cat(streamed.id, '/app/message')).stdout, 'streamed hello\n');
  assert.equal((await cat(streamed.id, '/data/early.txt')).stdout, 'read before the rollout\n');
  assert.equal(
    (await nodeCri.execSync(streamed.id, ['/bin/ls', '/opaque', '/data'], 30)).stdout,
    '/data:\nblob\nearly.txt\nlate.txt\n\n/opaque:\nnew.txt\n',
  );
  const manifestLayers = await registryLayers(registry.host, 'test/workload');
  const blobs = await contentBlobs(workloads);
  for (const digest of manifestLayers)
    assert.ok(!blobs.includes(digest.slice(7)), `layer ${digest} was pulled`);

  // The downloader (from the image, with its capabilities only) makes the layers local; a pod
  // started after that stands on local directories.
  process.kill(downloaderPid, 'SIGCONT');
  held = undefined;
  const cacheDir = join(node.path, 'var/lib/gcfs/snapshotter/layers');
  await eventually(
    'the layers to be downloaded',
    async () => ((await links()).every((l) => l.startsWith(cacheDir)) ? true : undefined),
    120_000,
  );
  const local = await startWorkload('local');
  assert.equal((await blobSum(local.id)).stdout, expectedBlob);

  // The rollout: preStop as kubelet runs it, StopContainer with the grace period, a new pod.
  const preStop = await first.preStop('gcfsd');
  assert.equal(preStop?.exitCode, 0, preStop?.stderr);
  const exitCodes = await first.delete();
  assert.deepEqual(exitCodes, { gcfsd: 0, downloader: 0 });
  const gcfsdLog = (await readCriLog(first.logs.gcfsd!)).join('\n');
  assert.match(gcfsdLog, /GCFSD: stopped/);
  assert.deepEqual(await mountsUnder(mountPoint), [], 'gcfsd left its mount behind');
  const second = await startGcfsPod();
  assert.match((await readCriLog(second.logs.gcfsd!)).join('\n'), /Restored 1 images in use/);

  // What the running pods see now.
  assert.equal((await cat(local.id, '/data/late.txt')).stdout, 'first read after the rollout\n');
  assert.equal((await blobSum(local.id)).stdout, expectedBlob);
  // The pod started while streaming: its overlay stands on directories of the old gcfsd's FUSE
  // connection, which the kernel aborted when that process exited. Its process runs on, but
  // nothing of its files can be reached any more, not even to exec a probe: a clear error
  // (ENOTCONN), never other bytes. Only a restart of the pod (on local layers now) heals it.
  const attempt = (
    exec: Promise<{ exitCode: number; stdout: string; stderr: string }>,
  ): Promise<{ stdout: string } | { error: string }> =>
    exec.then(
      (r) => (r.exitCode === 0 ? { stdout: r.stdout } : { error: r.stderr }),
      (err: Error) => ({ error: err.message }),
    );
  const afterRollout = {
    'read before': await attempt(cat(streamed.id, '/data/early.txt')),
    'never read': await attempt(cat(streamed.id, '/data/late.txt')),
    blob: await attempt(blobSum(streamed.id)),
  };
  for (const [what, result] of Object.entries(afterRollout)) {
    assert.ok('error' in result, `${what}: ${JSON.stringify(result)}`);
    assert.match(result.error, /transport endpoint is not connected/i, what);
  }
  assert.equal((await nodeCri.containerStatus(streamed.id)).state, cri.ContainerState.CONTAINER_RUNNING);
  t.diagnostic(`streamed pod after the rollout: ${JSON.stringify(afterRollout)}`);
  const again = await startWorkload('after-rollout');
  assert.equal((await cat(again.id, '/app/message')).stdout, 'streamed hello\n');
  assert.equal((await blobSum(again.id)).stdout, expectedBlob);

  // Uninstall: the pods go, then gcfs's pod; nothing is left mounted.
  for (const pod of [streamed, local, again]) await nodeCri.removePod(pod.podId);
  assert.deepEqual(await second.delete(), { gcfsd: 0, downloader: 0 });
  assert.deepEqual(await mountsUnder(join(node.path, 'run')), []);
  // No socket left: the snapshotter's, the downloader's, the admin and keychain sockets.
  const left = async (dir: string) => (await readdir(join(node.path, dir))).sort();
  assert.deepEqual(await left('run/containerd-gcfs-grpc'), []);
  assert.deepEqual(await left('run/gcfsd'), ['mnt']);
  await access(join(node.path, 'run/gcfsd')); // the host path itself stays, as kubelet leaves it
  passed = true;
});
