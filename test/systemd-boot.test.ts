// deploy/systemd under a real systemd: a Debian machine with containerd, booted by
// systemd-nspawn (testkit's SystemdMachine; this host's PID 1 is not systemd), where
// install.sh installs gcfs as an operator would and the units run: ready only once gcfsd
// serves, started before containerd, restarted after a crash, not restarted after a bad
// flag, healthy in `gcfsctl status`, streaming a pod's image (from a registry on the host,
// through the machine's containerd and CRI), upgraded in order under a running pod,
// uninstalled without a trace.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { seededSha256 } from '@gcfs/image-builder';
import { bootSystemdMachine, makeTempDir, type SystemdMachine } from '@gcfs/testkit';
import { BLOB, registryLayers, retried } from './image-node.js';
import { eventually } from './streaming-stack.js';
import { containerdConfig, MachineCri, nodeNetwork, writeMachineRegistryHosts } from './systemd-node.js';

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL = '/root/gcfs/deploy/systemd/install.sh';

async function run(machine: SystemdMachine, command: string, ...args: string[]): Promise<string> {
  const result = await machine.exec(command, ...args);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** The journal of both gcfsd units since `cursor`, messages only. */
async function journalSince(machine: SystemdMachine, cursor: string): Promise<string[]> {
  const text = await run(machine, 'journalctl', `--after-cursor=${cursor}`, '-o', 'cat', '--no-pager');
  return text.split('\n');
}

async function cursor(machine: SystemdMachine): Promise<string> {
  const text = await run(machine, 'journalctl', '-n', '0', '--show-cursor', '--no-pager');
  return /-- cursor: (\S+)/.exec(text)![1]!;
}

test('under systemd: install starts the units, gcfsd counts as started once it serves and before containerd, a crash restarts it, a bad flag does not, gcfsctl says healthy, a pod streams, an upgrade stops gcfsd before the downloader and keeps the files of a running pod, uninstall leaves no mount, socket or process', async (t) => {
  // One hook, in this order: the machine's root must outlive it (its poweroff runs from there).
  const dir = await makeTempDir('gcfs-machine-');
  let node: Awaited<ReturnType<typeof nodeNetwork>> | undefined;
  let machine: SystemdMachine | undefined;
  let cri: MachineCri | undefined;
  t.after(async () => {
    // runc's cgroups (v1, cgroupfs) outlive a machine powered off with pods: remove them first.
    await cri?.drain().catch(() => undefined);
    await machine?.stop();
    await node?.stop();
    await dir.cleanup();
  });
  // The machine's network reaches the registry on the host through a veth.
  node = await nodeNetwork();
  machine = await bootSystemdMachine(join(dir.path, 'root'), { netns: `/run/netns/${node.network.name}` });
  await writeMachineRegistryHosts(machine, node.registry.host);
  await execFileAsync(join(root, 'scripts/runtime-tree'), [join(machine.root, 'root/gcfs')]);
  // The operator's flags, before the install (kept by it): cfsd on this machine as backend.
  const env = await readFile(join(root, 'deploy/systemd/gcfsd.env'), 'utf8');
  await mkdir(join(machine.root, 'etc/default'), { recursive: true });
  const gcfsdEnv = join(machine.root, 'etc/default/gcfsd');
  await writeFile(gcfsdEnv, env.replace('--addr="', '--addr=127.0.0.1:7070"'), { mode: 0o600 });
  assert.match(await readFile(gcfsdEnv, 'utf8'), /--addr=127\.0\.0\.1:7070"/);

  const start = await cursor(machine);
  await run(machine, INSTALL, '--from', '/root/gcfs', '--enable', 'cfsd gcfsd-downloader gcfsd');
  assert.equal(
    (await machine.exec('systemctl', 'is-active', 'cfsd', 'gcfsd-downloader', 'gcfsd')).stdout,
    'active\nactive\nactive\n',
  );
  assert.equal((await run(machine, 'findmnt', '-n', '-o', 'FSTYPE', '/run/gcfsd/mnt')).trim(), 'fuse.gcfs');
  for (const socket of [
    '/run/gcfsd/admin.sock',
    '/run/gcfsd/downloader.sock',
    '/run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock',
  ]) {
    // The downloader counts as started once exec'd (Type=simple): its socket comes a moment later.
    await eventually(
      socket,
      async () => ((await machine.exec('test', '-S', socket)).code === 0 ? true : undefined),
      30_000,
    );
  }
  assert.equal((await run(machine, 'stat', '-c', '%a', '/run/gcfsd')).trim(), '700');
  // Type=notify: systemd says gcfsd started only after gcfsd said it serves.
  const boot = await journalSince(machine, start);
  const serving = boot.findIndex((line) => line.includes('msg="GCFSD: serving"'));
  const started = boot.findIndex((line) => line.startsWith('Started gcfsd.service'));
  assert.ok(serving >= 0 && started > serving, `serving at ${serving}, started at ${started}`);

  // containerd configured for gcfs as the docs say: starting it starts gcfsd first and waits
  // until gcfsd serves (WantedBy=containerd.service, Before=); its proxy snapshotter answers.
  await mkdir(join(machine.root, 'etc/containerd'), { recursive: true });
  await writeFile(join(machine.root, 'etc/containerd/config.toml'), containerdConfig(node.pause));
  await run(machine, 'systemctl', 'stop', 'containerd', 'gcfsd', 'gcfsd-downloader');
  const beforeContainerd = await cursor(machine);
  await run(machine, 'systemctl', 'start', 'containerd');
  const containerdStart = await journalSince(machine, beforeContainerd);
  const gcfsdReady = containerdStart.findIndex((line) => line.startsWith('Started gcfsd.service'));
  const containerdStarting = containerdStart.findIndex((line) =>
    line.startsWith('Starting containerd.service'),
  );
  assert.ok(gcfsdReady >= 0 && containerdStarting > gcfsdReady, `${gcfsdReady} < ${containerdStarting}`);
  await run(machine, 'ctr', 'snapshots', '--snapshotter', 'gcfs', 'ls');

  // A crash: systemd restarts gcfsd, which detaches the dead mount first.
  const crashed = await run(machine, 'systemctl', 'show', '-p', 'MainPID', '--value', 'gcfsd');
  await run(machine, 'kill', '-9', crashed.trim());
  await eventually(
    'gcfsd restarted',
    async () => {
      const show = await run(machine, 'systemctl', 'show', '-p', 'NRestarts', '-p', 'ActiveState', 'gcfsd');
      return show.includes('NRestarts=1') && show.includes('ActiveState=active') ? true : undefined;
    },
    30_000,
  );
  assert.match(await run(machine, 'journalctl', '-u', 'gcfsd', '-o', 'cat'), /Unmounted a stale mount/);
  assert.equal(
    (await run(machine, 'findmnt', '-n', '-t', 'fuse.gcfs', '-o', 'TARGET')).trim(),
    '/run/gcfsd/mnt',
  );

  // A bad flag (exit code 2) is not restarted: the unit fails and says why.
  const good = await readFile(gcfsdEnv, 'utf8');
  await writeFile(gcfsdEnv, good.replace('GCFSD_FLAGS="', 'GCFSD_FLAGS="--no_such_flag=1 '));
  assert.notEqual((await machine.exec('systemctl', 'restart', 'gcfsd')).code, 0);
  await eventually(
    'gcfsd failed',
    async () =>
      (await machine.exec('systemctl', 'is-failed', 'gcfsd')).stdout.trim() === 'failed' ? true : undefined,
    30_000,
  );
  assert.match(await run(machine, 'systemctl', 'show', '-p', 'NRestarts', 'gcfsd'), /NRestarts=0/);
  assert.match(await run(machine, 'journalctl', '-u', 'gcfsd', '-o', 'cat'), /no_such_flag/);
  await writeFile(gcfsdEnv, good);
  await run(machine, 'systemctl', 'reset-failed', 'gcfsd');
  await run(machine, 'systemctl', 'start', 'gcfsd');

  // "Check": healthy, cfsd (on this machine) reachable.
  const status = await run(machine, 'gcfsctl', 'status');
  assert.match(status, /^cfsd\s+127\.0\.0\.1:7070: reachable$/m);
  assert.match(status, /^health\s+healthy$/m);

  // A pod's image streams: pulled through CRI with no layer blob in containerd's content
  // store, registered by gcfsd (its journal), and the container reads its files.
  cri = new MachineCri(machine);
  const { workload } = node;
  // containerd dials the snapshotter restarted above again only after its backoff.
  await retried('the pull', () => cri!.client.pullImage(workload));
  const blobs = await run(machine, 'ls', '/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256');
  for (const digest of await registryLayers(node.registry.host, 'test/workload'))
    assert.ok(!blobs.includes(digest.slice(7)), `layer ${digest} was pulled`);
  assert.match(
    await run(machine, 'journalctl', '-u', 'gcfsd', '-o', 'cat'),
    new RegExp(`Streaming image ${node.registry.host.replace(/[.]/g, '\\.')}/test/workload`),
  );
  assert.deepEqual(await cri.run('streamed', workload, 'cat /app/message /data/early.txt; ls /opaque'), [
    'streamed hello',
    'read before the rollout',
    'new.txt',
  ]);

  // Upgrade under a running pod, as the docs say: once its layers are local (`gcfsctl wait`).
  await run(machine, 'gcfsctl', 'wait', workload);
  const local = await cri.start('local', workload, 'sleep 2147483647');
  const expectedBlob = `${await seededSha256(BLOB)}  /data/blob\n`;
  const blobSum = async () =>
    (await cri!.client.execSync(local.id, ['/bin/busybox', 'sha256sum', '/data/blob'], 60)).stdout;
  assert.equal(await blobSum(), expectedBlob);
  assert.match(await run(machine, 'gcfsctl', 'status'), /^downloads\s+0 under way$/m);

  // Upgrade: gcfsd stops (unmounting) before the downloader, which starts again first; cfsd,
  // not asked for but running the old tree, restarts too.
  const before = await cursor(machine);
  await run(machine, INSTALL, '--from', '/root/gcfs');
  const upgrade = await journalSince(machine, before);
  const order = [
    upgrade.findIndex((line) => line.includes('msg="GCFSD: stopped"')),
    upgrade.findIndex((line) => line.includes('msg="Layer downloader stopped"')),
    upgrade.findIndex((line) => line.startsWith('Started gcfsd-downloader.service')),
    upgrade.findIndex((line) => line.startsWith('Starting gcfsd.service')),
    upgrade.findIndex((line) => line.includes('msg="GCFSD: serving"')),
  ];
  assert.ok(
    order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)),
    `upgrade order ${order}`,
  );
  assert.ok(
    upgrade.some((line) => line.includes('msg="cfsd serving"')),
    'cfsd restarted',
  );
  assert.match(await readFile(gcfsdEnv, 'utf8'), /--addr=127\.0\.0\.1:7070"/, 'the flags are kept');
  assert.equal(
    (await machine.exec('systemctl', 'is-active', 'gcfsd-downloader', 'gcfsd')).stdout,
    'active\nactive\n',
  );

  // The running pod reads its files (one not read before too); a new container starts.
  assert.equal(await cri.cat(local.id, '/data/late.txt'), 'first read after the rollout\n');
  assert.equal(await blobSum(), expectedBlob);
  assert.deepEqual(await cri.run('after-upgrade', workload, 'cat /app/message'), ['streamed hello']);

  // Uninstall: refused while containerd is configured for gcfs; done as the docs say, the
  // node drained first.
  await cri.drain();
  cri = undefined;
  const refused = await machine.exec('/opt/gcfs/deploy/systemd/install.sh', 'uninstall', '--purge');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /still uses the gcfs snapshotter/);
  await writeFile(join(machine.root, 'etc/containerd/config.toml'), '');
  await run(machine, 'systemctl', 'restart', 'containerd');
  await run(machine, '/opt/gcfs/deploy/systemd/install.sh', 'uninstall', '--purge');
  assert.equal((await machine.exec('systemctl', 'is-active', 'containerd')).stdout.trim(), 'active');
  assert.equal((await machine.exec('findmnt', '-n', '-t', 'fuse.gcfs')).stdout, '', 'no gcfs mount');
  assert.equal((await machine.exec('pgrep', '-f', '/opt/gcfs/')).stdout, '', 'no gcfs process');
  for (const gone of [
    '/run/gcfsd',
    '/run/containerd-gcfs-grpc',
    '/etc/systemd/system/containerd.service.wants/gcfsd.service',
    '/opt/gcfs',
    '/etc/default/gcfsd',
    '/var/lib/cfsd',
  ]) {
    assert.notEqual((await machine.exec('test', '-e', gone)).code, 0, `${gone} is gone`);
  }
  assert.equal(
    (await run(machine, 'ls', '/usr/local/bin', '/usr/local/lib/systemd/system'))
      .replace(/\S+:\n/g, '')
      .trim(),
    '',
  );
  const units = await machine.exec('systemctl', 'list-unit-files', '--no-pager', 'gcfs*', 'cfsd*');
  assert.match(units.stdout, /^0 unit files listed/m);
});
