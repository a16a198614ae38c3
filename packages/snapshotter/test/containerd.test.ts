// Real containerd 1.6 (Debian's) with our snapshotter as its proxy plugin "gcfs": `ctr`
// pulls an image through it (Prepare, Commit per layer), lists the snapshots and runs a
// container whose rootfs is our overlay mount.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { makeTempDir, startProcess, startRegistry } from '@gcfs/testkit';
import { Snapshotter, serveSnapshots } from '../src/index.js';
import { unmount } from './mounts.js';

const run = promisify(execFile);

function config(dir: string, socket: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = ${q(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(dir, 'containerd.sock.ttrpc'))}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}

[proxy_plugins.gcfs]
  type = "snapshot"
  address = ${q(socket)}
`;
}

test('containerd 1.6 pulls through the gcfs proxy snapshotter and runs a container on it', async (t) => {
  const temp = await makeTempDir('gcfs-snap-ctrd-');
  const cleanups: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await temp.cleanup();
  });

  const registry = await startRegistry();
  cleanups.push(() => registry.stop());
  const built = await buildImage(
    {
      config: { cmd: ['/bin/busybox', 'cat', '/etc/msg'] },
      layers: [
        {
          entries: [
            { type: 'dir', path: 'bin', mode: 0o755 },
            { type: 'file', path: 'bin/busybox', mode: 0o755, content: { path: '/bin/busybox' } },
            { type: 'dir', path: 'etc', mode: 0o755 },
            { type: 'file', path: 'etc/gone', content: 'deleted by layer 2' },
            { type: 'file', path: 'etc/msg', content: 'from layer 1' },
          ],
        },
        {
          entries: [
            { type: 'dir', path: 'etc', mode: 0o755 },
            { type: 'whiteout', path: 'etc/gone' },
            { type: 'file', path: 'etc/msg', content: 'from layer 2' },
          ],
        },
      ],
    },
    { layoutDir: join(temp.path, 'layout') },
  );
  await pushImage(new RegistryClient({ insecureHosts: ['127.0.0.1'] }), built, {
    registry: registry.host,
    repository: 'snap/app',
    tag: 'v1',
  });
  const ref = `${registry.host}/snap/app:v1`;

  const socket = join(temp.path, 'run', 'gcfs.sock');
  let snapshotter = await Snapshotter.open(join(temp.path, 'snapshotter'));
  let server = await serveSnapshots(snapshotter, socket);
  cleanups.push(async () => {
    await server.stop();
    await snapshotter.close();
  });

  const dir = join(temp.path, 'containerd');
  await run('mkdir', ['-p', dir]);
  await writeFile(join(dir, 'config.toml'), config(dir, socket));
  const containerd = await startProcess({
    name: 'containerd',
    command: '/usr/bin/containerd',
    args: ['--config', join(dir, 'config.toml')],
    logFile: join(dir, 'containerd.log'),
    ready: { logLine: /containerd successfully booted/ },
    readyTimeoutMs: 30_000,
    stopTimeoutMs: 10_000,
  });
  const namespace = `gcfs-test-${process.pid}`;
  const ctr = (...args: string[]) =>
    run('ctr', ['-a', join(dir, 'containerd.sock'), '-n', namespace, ...args], { timeout: 60_000 });
  // Stopped before the snapshotter goes (cleanups run in reverse): first the container's
  // task and mounts, then containerd.
  cleanups.push(async () => {
    await ctr('tasks', 'kill', '-s', 'SIGKILL', 't1').catch(() => undefined);
    await ctr('containers', 'rm', 't1').catch(() => undefined);
    await containerd.stop();
    await unmount(join(dir, 'state'));
  });

  try {
    await ctr('images', 'pull', '--plain-http', '--snapshotter', 'gcfs', ref);
    const committed = snapshotter.list(['kind==Committed']);
    assert.equal(committed.length, 2);
    const top = committed.find((info) => info.parent !== '');
    assert.ok(top && committed.some((info) => info.name === top.parent), 'a chain of two layers');
    assert.match(top.name, new RegExp(`^${namespace}/\\d+/sha256:[0-9a-f]{64}$`));

    const listed = (await ctr('snapshots', '--snapshotter', 'gcfs', 'ls')).stdout;
    assert.equal((listed.match(/Committed/g) ?? []).length, 2, listed);

    // `ctr run` of a task that exits at once now and then loses its output (the shim is gone
    // before ctr has copied the FIFO); the file system is what is tested, so ask twice.
    let { stdout } = await ctr('run', '--snapshotter', 'gcfs', '--rm', ref, 't1');
    if (stdout === '') ({ stdout } = await ctr('run', '--snapshotter', 'gcfs', '--rm', ref, 't1'));
    assert.equal(stdout, 'from layer 2');
    const ls = await ctr('run', '--snapshotter', 'gcfs', '--rm', ref, 't1', '/bin/busybox', 'ls', '/etc');
    assert.deepEqual(ls.stdout.trim().split(/\s+/), ['msg']);
    // containerd forgets the container's active snapshot at once; it removes it from us
    // later, in its background GC.
    const after = (await ctr('snapshots', '--snapshotter', 'gcfs', 'ls')).stdout;
    assert.doesNotMatch(after, /Active/, after);

    // Our restart: containerd reconnects, the snapshots are still there and still run.
    await server.stop();
    await snapshotter.close();
    snapshotter = await Snapshotter.open(join(temp.path, 'snapshotter'));
    server = await serveSnapshots(snapshotter, socket);
    assert.equal((await ctr('snapshots', '--snapshotter', 'gcfs', 'ls')).stdout, listed);
    assert.equal((await ctr('run', '--snapshotter', 'gcfs', '--rm', ref, 't1')).stdout, 'from layer 2');
  } catch (err) {
    const log = await readFile(join(dir, 'containerd.log'), 'utf8').catch(() => '');
    throw new Error(`${String(err)}\ncontainerd log (tail):\n${log.slice(-4000)}`, { cause: err });
  }
});
