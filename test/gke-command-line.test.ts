// End to end: gcfsd started with GKE's own command lines (the seed's `ps` lines: no --addr),
// paths moved into a temp dir, in front of containerd 1.6 configured as docs/operations.md
// says. Without a content service nothing streams, but the node works: kubelet's pulls go
// through the keychain socket and the gcfs snapshotter, containers run, and each image's
// normal pull is said once (log, metric, event).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode, gcfsVersion, isGcfsError } from '@gcfs/core';
import { AdminClient } from '@gcfs/gcfsd';
import type { ImageSpec } from '@gcfs/image-builder';
import {
  CriClient,
  curl,
  freePort,
  type ManagedProcess,
  makeTempDir,
  readCriLog,
  repoBin,
  runBin,
  startContainerd,
  startProcess,
  startRegistry,
} from '@gcfs/testkit';
import { busyboxEntries, PAUSE_IMAGE, pushTestImage } from './cri-images.js';

const execFileAsync = promisify(execFile);
const GCFSD = repoBin('gcfsd');

/** busybox and a layer of its own: an image of several layers, said once all the same. */
const APP_IMAGE: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    { entries: busyboxEntries() },
    {
      entries: [
        { type: 'dir', path: 'app', mode: 0o755 },
        { type: 'file', path: 'app/message', mode: 0o644, content: "hello from GKE's line\n" },
      ],
    },
  ],
};

/** The `msg` of each text log line that has one, with its fields. */
function logLines(log: string): Array<{ msg: string; line: string }> {
  return log
    .split('\n')
    .map((line) => ({ line, msg: /msg="((?:[^"\\]|\\.)*)"|msg=(\S+)/.exec(line) }))
    .filter((entry) => entry.msg !== null)
    .map(({ line, msg }) => ({ line, msg: (msg![1] ?? msg![2])!.replaceAll('\\"', '"') }));
}

test("GKE's command lines start gcfsd without --addr: containerd pulls through the gcfs snapshotter, the container runs, each image's fallback is said once", async (t) => {
  const registry = await startRegistry();
  const dir = await makeTempDir('gcfs-gke-line-');
  const run = join(dir.path, 'run', 'gcfsd');
  const snapshotterRoot = join(dir.path, 'var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter');
  const layerCache = join(snapshotterRoot, 'layers');
  const keychainSocket = join(run, 'keychain.sock');
  const snapshotterSocket = join(dir.path, 'run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock');
  // containerd's socket is known once it runs: gcfsd is given a link to it, made then.
  const containerdLink = join(dir.path, 'containerd.sock');
  const metricsPort = await freePort();
  let downloader: ManagedProcess | undefined;
  let gcfsd: ManagedProcess | undefined;
  let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  let direct: CriClient | undefined;
  let kubelet: CriClient | undefined;
  // One hook, in this order: containers and their mounts go before gcfsd's FUSE mount.
  t.after(async () => {
    direct?.close();
    kubelet?.close();
    await containerd?.stop();
    await gcfsd?.stop();
    await downloader?.stop();
    await registry.stop();
    await dir.cleanup();
  });
  const sandboxImage = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE);
  const appImage = await pushTestImage(registry.host, 'test/app', APP_IMAGE);

  // The seed's second line, its cache dir (a default on a node) moved like the rest.
  downloader = await startProcess({
    name: 'gcfsd --downloader',
    command: GCFSD,
    args: [
      '--downloader',
      `--downloader_uds_path=${join(run, 'downloader.sock')}`,
      `--layer_cache_dir=${layerCache}`,
    ],
    ready: { logLine: /Layer downloader serving/ },
  });
  // The seed's first line as is, paths moved; then what a node has at its defaults, moved too.
  gcfsd = await startProcess({
    name: 'gcfsd',
    command: GCFSD,
    args: [
      `--mount_point=${join(run, 'mnt')}`,
      '--max_content_cache_size_mb=36',
      '--max_large_files_cache_size_mb=36',
      `--layer_cache_dir=${layerCache}`,
      `--images_in_use_db_path=${join(dir.path, 'var/lib/containerd/io.containerd.snapshotter.v1.gcfs/gcfsd/images_in_use.db')}`,
      '--enable_pull_secret_keychain',
      `--downloader_uds_path=${join(run, 'downloader.sock')}`,
      `--snapshotter_uds_path=${snapshotterSocket}`,
      `--snapshotter_root=${snapshotterRoot}`,
      `--keychain_uds_path=${keychainSocket}`,
      `--containerd_address=${containerdLink}`,
      `--port=${metricsPort}`,
    ],
    ready: { logLine: /GCFSD: serving/ },
    logFile: join(dir.path, 'gcfsd.log'),
    stopTimeoutMs: 15_000,
  });
  containerd = await startContainerd({
    registryHost: registry.host,
    sandboxImage,
    snapshotter: 'gcfs',
    proxySnapshotters: { gcfs: snapshotterSocket },
    discardUnpackedLayers: true,
  });
  await symlink(containerd.address, containerdLink);
  const cri = new CriClient(containerd.address);
  direct = cri;
  kubelet = new CriClient(keychainSocket);

  // kubelet pulls through its --image-service-endpoint, gcfsd's keychain socket.
  await kubelet.pullImage(appImage);
  const pod = await cri.runPodSandbox({ name: 'gke-line', logDirectory: join(dir.path, 'pods') });
  for (const name of ['first', 'second']) {
    const container = await cri.createContainer(pod, {
      name,
      image: appImage,
      command: ['/bin/sh', '-c', 'cat /app/message'],
    });
    await cri.startContainer(container.id);
    const exited = await cri.waitForExit(container.id);
    assert.deepEqual([exited.exitCode, await readCriLog(container.logFile)], [0, ["hello from GKE's line"]]);
  }

  const log = logLines(gcfsd.output());
  const with_ = (pattern: RegExp) => log.filter((entry) => pattern.test(entry.msg));
  const { version, commit } = gcfsVersion();
  const start = with_(/^Starting gcfsd$/);
  assert.equal(start.length, 1);
  assert.match(start[0]!.line, new RegExp(`commit=${commit} .*version=${version.replaceAll('.', '\\.')}`));
  const compatibility = with_(/^Flags accepted for compatibility/);
  assert.equal(compatibility.length, 1);
  assert.match(compatibility[0]!.msg, /--max_large_files_cache_size_mb \(/);
  assert.match(compatibility[0]!.line, /level=info/);
  const noBackend = with_(/no Container File System address \(--addr\)/);
  assert.equal(noBackend.length, 1);
  assert.match(noBackend[0]!.line, /level=warning .*reason=ERR_NO_BACKEND/);

  // Once for the image, though it has two layers and ran twice. (The sandbox image is its
  // first layer alone: containerd has that snapshot already and asks nothing.)
  const fallbacks = with_(/ is not streamed, containerd pulls it normally: /);
  assert.deepEqual(
    fallbacks.map((f) => f.msg),
    [
      `Image ${appImage} is not streamed, containerd pulls it normally: gcfsd has no content service address (--addr)`,
    ],
  );
  assert.match(fallbacks[0]!.line, /level=info .*reason=ERR_NO_BACKEND/);
  const events = with_(/^Event \w+ ImageStreaming: /);
  assert.deepEqual(
    events.map((e) => e.msg),
    [
      `Event Normal ImageStreaming: Image ${appImage} is not streamed and is pulled normally (ERR_NO_BACKEND): gcfsd has no content service address (--addr)`,
    ],
  );
  assert.equal(with_(/^Registering image/).length, 0, 'nothing asks a content service');
  assert.equal(with_(/^Streaming image/).length, 0);

  const metrics = (await curl(['-sS', `http://127.0.0.1:${metricsPort}/metrics`])).body.toString();
  const sample = (name: string) =>
    metrics
      .split('\n')
      .filter((line) => line.startsWith(name))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  assert.equal(sample(`gcfsd_image_streaming_fallbacks_total{reason="${ErrorCode.NoBackend}"`), 1);
  assert.equal(sample('gcfsd_remote_snapshots_total'), 0);
  assert.match(
    metrics,
    new RegExp(`^gcfs_build_info\\{version="${version}",commit="${commit}",.*\\} 1$`, 'm'),
  );

  // The admin socket serves, and says why it streams nothing.
  const admin = new AdminClient(join(run, 'admin.sock'));
  try {
    await assert.rejects(admin.register(appImage), (err) => isGcfsError(err, ErrorCode.NoBackend));
    assert.deepEqual(await admin.list(), []);
  } finally {
    admin.close();
  }

  // gcfsctl finds it at GKE's mount point's admin socket and sees a healthy node without cfsd.
  const status = await runBin(repoBin('gcfsctl'), ['--mount_point', join(run, 'mnt'), 'status', '--json']);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  const node = JSON.parse(status.stdout) as { healthy: boolean; cfsd: { address: string; error?: string } };
  assert.equal(node.healthy, true);
  assert.deepEqual(node.cfsd, {
    address: '',
    reachable: false,
    error: 'no --addr: every image is pulled normally (ERR_NO_BACKEND)',
  });

  // containerd unpacked every layer itself, into gcfs's snapshotter: nothing in the mount.
  const { stdout } = await execFileAsync('ls', ['-A', join(run, 'mnt', 'images')]);
  assert.equal(stdout, '');

  await containerd.stop();
  const exit = await gcfsd.stop();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.match(gcfsd.output(), /GCFSD: stopped/);
});
