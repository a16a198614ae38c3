// End to end: the real gcfsd executable (FUSE server) with a real registry, a real cfsd and
// the real `gcfsd --downloader`. The test process never serves the mount, and reads it only
// through child processes all the same.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startCfsd } from '@gcfs/cfsd';
import { imageDirName, layerDirName, streamedLayerTarget } from '@gcfs/core';
import { cleanStaleMount } from '@gcfs/fuse';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { curl, type ManagedProcess, startProcess, startRegistry, tempDirFor } from '@gcfs/testkit';
import { AdminClient, adminSocketPath } from '../../src/daemon/admin.js';

const run = promisify(execFile);
const GCFSD_BIN = fileURLToPath(new URL('../../../bin/gcfsd', import.meta.url));

async function sh(script: string): Promise<string> {
  return (await run('sh', ['-c', script], { timeout: 30_000 })).stdout;
}

/** Poll `check` (each try a child process) until it holds; the bound only stops a hung suite. */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await delay(100);
  }
  assert.fail(`never: ${what}`);
}

async function isMounted(path: string): Promise<boolean> {
  return (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

test('registration: symlinks at once, switched to local layers after download, restored after a restart', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = await tempDirFor(t, 'gcfsd-e2e-layout-');
  const built = await buildImage(
    {
      layers: [
        {
          compression: 'gzip',
          entries: [
            { type: 'dir', path: 'etc', mode: 0o755 },
            { type: 'file', path: 'etc/os-release', mode: 0o644, content: 'ID=gcfs\n' },
          ],
        },
        {
          compression: 'gzip',
          entries: [{ type: 'file', path: 'app.bin', mode: 0o755, content: { size: 300_000, seed: 'app' } }],
        },
      ],
    },
    { layoutDir: layout.path },
  );
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'e2e/app', tag: 'v1' });
  await pusher.close();
  const image = `${registry.host}/e2e/app:v1`;
  const layers = built.layers.map((layer) => layer.descriptor.digest as string);

  const store = await tempDirFor(t, 'gcfsd-e2e-store-');
  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${store.path}`,
    registry: { insecureHosts: ['127.0.0.1'] },
  });
  t.after(() => cfsd.stop(100));

  const dir = await tempDirFor(t, 'gcfsd-e2e-');
  const mnt = join(dir.path, 'run', 'mnt');
  const cacheDir = join(dir.path, 'layers');
  const socket = join(dir.path, 'run', 'downloader.sock');
  // Registered before the dir is removed, so it runs after the last gcfsd has stopped.
  t.after(() => cleanStaleMount(mnt));
  // Downloads at once: this test follows them from registration on.
  const common = [
    `--downloader_uds_path=${socket}`,
    `--layer_cache_dir=${cacheDir}`,
    '--download_quiet_period=0',
  ];

  const children: ManagedProcess[] = [];
  t.after(async () => {
    for (const child of children) await child.stop();
  });
  const startGcfsd = async () => {
    const child = await startProcess({
      name: 'gcfsd',
      command: GCFSD_BIN,
      args: [
        ...common,
        `--mount_point=${mnt}`,
        `--addr=${cfsd.address}`,
        `--images_in_use_db_path=${join(dir.path, 'db', 'images_in_use.db')}`,
        `--snapshotter_uds_path=${join(dir.path, 'run', 'snapshotter.sock')}`,
        `--snapshotter_root=${join(dir.path, 'snapshotter')}`,
        '--port=0',
        '--gc_period=0',
        '--client_uid=e2e',
        '--log_formatter=json',
      ],
      ready: { logLine: /GCFSD: serving/ },
    });
    children.push(child);
    return child;
  };

  // gcfsd first, with the downloader away: layers stay streamed until it comes.
  const first = await startGcfsd();
  assert.match(first.output(), /Starting Prometheus metrics HTTP handler/);
  assert.match(first.output(), /Detected 0 existing layers in cacheDir/);
  const admin = new AdminClient(adminSocketPath(mnt));
  t.after(() => admin.close());
  const registered = await admin.register(image);
  assert.equal(registered.name, image);
  const imageDir = join(mnt, 'images', imageDirName(image));
  assert.equal(registered.path, `images/${imageDirName(image)}`);
  const links = await sh(`readlink ${imageDir}/0 ${imageDir}/1`);
  assert.deepEqual(links.trim().split('\n'), layers.map(streamedLayerTarget));
  assert.equal(await sh(`cat ${imageDir}/0/etc/os-release`), 'ID=gcfs\n');
  const streamedSum = await sh(`sha256sum < ${imageDir}/1/app.bin`);
  assert.match(first.output(), /Registering image /);
  assert.match(first.output(), /Async layer download started/);

  const downloader = await startProcess({
    name: 'gcfsd --downloader',
    command: GCFSD_BIN,
    args: ['--downloader', ...common, '--insecure_registry=127.0.0.1'],
    ready: { logLine: /Layer downloader serving/ },
  });
  children.push(downloader);
  await eventually('both symlinks point to the local layers', async () => {
    const now = (await sh(`readlink ${imageDir}/0 ${imageDir}/1`)).trim().split('\n');
    return now.every((target, i) => target === join(cacheDir, layerDirName(layers[i]!)));
  });
  assert.match(first.output(), /Layer download\/untar done \(succeeded=true\)/);
  assert.equal(await sh(`sha256sum < ${imageDir}/1/app.bin`), streamedSum);
  const metricsPort =
    /"msg":"Starting Prometheus metrics HTTP handler"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"Starting Prometheus metrics HTTP handler"/.exec(
      first.output(),
    );
  const metrics = (
    await curl(['-sS', `http://127.0.0.1:${metricsPort?.[1] ?? metricsPort?.[2]}/metrics`])
  ).body.toString();
  assert.match(metrics, /gcfsd_fuse_reads_total\{[^}]*source="remote"[^}]*client_uid="e2e"[^}]*\} [1-9]/);
  assert.match(metrics, /gcfsd_layer_downloads_total\{[^}]*result="succeeded"[^}]*\} 2/);
  assert.match(metrics, /gcfsd_backend_fetched_bytes_total\{[^}]*\} [1-9]/);
  assert.match(metrics, /gcfsd_images_in_use\{[^}]*\} 1/);

  // A clean stop unmounts; a new gcfsd puts the image back from the DB.
  const stopped = await first.stop();
  assert.equal(stopped.code, 0, first.output());
  assert.equal(await isMounted(mnt), false, 'SIGTERM left the mount behind');
  const second = await startGcfsd();
  assert.match(second.output(), /Detected 2 existing layers in cacheDir/);
  assert.deepEqual(
    (await sh(`readlink ${imageDir}/0 ${imageDir}/1`)).trim().split('\n'),
    layers.map((digest) => join(cacheDir, layerDirName(digest))),
  );
  assert.deepEqual(
    (await admin.list()).map((entry) => entry.name),
    [image],
  );

  // A crash leaves a dead mount; the next start cleans it up and serves again.
  process.kill(second.pid!, 'SIGKILL');
  await second.stop();
  assert.equal(await isMounted(mnt), true, 'the crash should have left the mount behind');
  const third = await startGcfsd();
  assert.equal(await sh(`cat ${imageDir}/0/etc/os-release`), 'ID=gcfs\n');
  await admin.unregister(image);
  const collected = await admin.collect();
  assert.deepEqual([...collected.layers].sort(), [...layers].sort());
  assert.deepEqual(collected.images, [image]);
  assert.equal(await sh(`ls ${join(mnt, 'images')}`), '');
  assert.equal((await sh(`ls ${cacheDir}`)).trim(), '');
  assert.equal((await third.stop()).code, 0, third.output());
});
