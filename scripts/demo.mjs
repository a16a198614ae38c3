// The demo, as far as the project goes today (issues 2-5 built; the containerd snapshotter
// and CRI arrive with issue 6): on loopback, a real OCI registry, cfsd, `gcfsd --downloader`
// and `gcfsd` (FUSE) as real processes. An image of ~230 MiB (a real tree of libraries plus
// a shell and an app) is pushed, registered with gcfsd like the snapshotter will, stacked
// with overlayfs over gcfsd's images/<name>/<i> lower dirs, and a process is run in it with
// chroot before its layers were downloaded. It prints the time to the process's first
// output, the bytes streamed from cfsd against the image size, and when the downloads
// finished and the layers switched to local copies.
// Usage: scripts/demo [--keep]
import { execFile as execFileCb } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createLogger, describeError } from '@gcfs/core';
import { imageDirName } from '@gcfs/fuse';
import { AdminClient, adminSocketPath } from '@gcfs/gcfsd';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { curl, freePort, startProcess, startRegistry } from '@gcfs/testkit';

const execFile = promisify(execFileCb);
const ROOT = new URL('..', import.meta.url).pathname;
const GCFSD = join(ROOT, 'packages/gcfsd/bin/gcfsd');
const CFSD = join(ROOT, 'packages/cfsd/bin/cfsd');
const CACHE = '/var/tmp/gcfs-demo-cache';
const keep = process.argv.includes('--keep');
const log = createLogger({ level: 'info' }).child({ module: 'demo' });
const MiB = 2 ** 20;

/** A shell, its loader and libc, so that the image can run /bin/sh. */
async function baseTree(dir) {
  for (const path of ['/bin/dash', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await copyFile(path, join(dir, path));
  }
  await symlink('dash', join(dir, 'bin/sh'));
}

async function buildDemoImage(work) {
  const base = join(work, 'base');
  await baseTree(base);
  const app = join(work, 'app');
  await mkdir(join(app, 'app'), { recursive: true });
  await writeFile(
    join(app, 'app/start.sh'),
    '#!/bin/sh\nread -r message < /app/message\necho "hello from a streamed image: $message"\n',
    { mode: 0o755 },
  );
  await writeFile(join(app, 'app/message'), 'gcfs demo\n');
  // Cached between runs: building the big layer takes a while.
  return buildImage(
    {
      config: { cmd: ['/app/start.sh'] },
      layers: [
        { compression: 'gzip', fromDirectory: '/usr/lib/x86_64-linux-gnu' },
        { compression: 'gzip', fromDirectory: base },
        { compression: 'gzip', fromDirectory: app },
      ],
    },
    { layoutDir: join(CACHE, 'layout') },
  );
}

async function metric(port, name) {
  const text = (await curl(['-sS', `http://127.0.0.1:${port}/metrics`])).body.toString();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

const work = await mkdtemp(join(tmpdir(), 'gcfs-demo-'));
const started = [];
let merged;
let registry;
let admin;
try {
  await mkdir(CACHE, { recursive: true });
  registry = await startRegistry();
  log.info('Registry started', { registry: registry.host });
  const built = await buildDemoImage(work);
  const imageBytes = built.layers.reduce((sum, l) => sum + l.descriptor.size, 0);
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'demo/app', tag: 'v1' });
  await pusher.close();
  const image = `${registry.host}/demo/app:v1`;
  log.info('Image pushed', {
    image,
    layers: built.layers.length,
    compressed_mib: (imageBytes / MiB).toFixed(1),
  });

  const cfsdPort = await freePort();
  started.push(
    await startProcess({
      name: 'cfsd',
      command: CFSD,
      args: [
        `--listen=127.0.0.1:${cfsdPort}`,
        `--store=file://${join(CACHE, 'cfsd-store')}`,
        '--insecure_registry=127.0.0.1',
        '--metrics_listen=',
      ],
      ready: { logLine: /cfsd serving/ },
      logFile: join(work, 'cfsd.log'),
    }),
  );
  const run = join(work, 'run');
  const mnt = join(run, 'mnt');
  const common = [
    `--downloader_uds_path=${join(run, 'downloader.sock')}`,
    `--layer_cache_dir=${join(work, 'layers')}`,
    '--insecure_registry=127.0.0.1',
  ];
  started.push(
    await startProcess({
      name: 'gcfsd --downloader',
      command: GCFSD,
      args: ['--downloader', ...common],
      ready: { logLine: /Layer downloader serving/ },
      logFile: join(work, 'downloader.log'),
    }),
  );
  const metricsPort = await freePort();
  started.push(
    await startProcess({
      name: 'gcfsd',
      command: GCFSD,
      args: [
        ...common,
        `--mount_point=${mnt}`,
        `--addr=127.0.0.1:${cfsdPort}`,
        `--images_in_use_db_path=${join(work, 'images_in_use.db')}`,
        `--port=${metricsPort}`,
        '--gc_period=0',
      ],
      ready: { logLine: /GCFSD: serving/ },
      logFile: join(work, 'gcfsd.log'),
    }),
  );
  log.info('cfsd, gcfsd and gcfsd --downloader started', { mount_point: mnt });

  // What the snapshotter will do on a CRI pull: register, then stack the layers with overlayfs.
  const t0 = process.hrtime.bigint();
  admin = new AdminClient(adminSocketPath(mnt));
  await admin.register(image);
  const registered = Number(process.hrtime.bigint() - t0) / 1e9;
  const imageDir = join(mnt, 'images', imageDirName(image));
  const lowers = built.layers.map((_, i) => join(imageDir, String(i))).reverse();
  merged = join(work, 'merged');
  await mkdir(merged);
  await execFile('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')}`, merged]);
  const { stdout } = await execFile('chroot', [merged, '/app/start.sh']);
  const firstOutput = Number(process.hrtime.bigint() - t0) / 1e9;
  const streamed = await metric(metricsPort, 'gcfsd_backend_fetched_bytes_total');
  const linksBefore = await Promise.all(built.layers.map((_, i) => readlink(join(imageDir, String(i)))));
  log.info('Process ran in the streamed image', { output: stdout.trim(), seconds: firstOutput.toFixed(2) });

  // The background downloads finish; the links switch to the local copies.
  let downloaded = 0;
  for (const deadline = Date.now() + 600_000; Date.now() < deadline; await delay(500)) {
    const links = await Promise.all(built.layers.map((_, i) => readlink(join(imageDir, String(i)))));
    if (links.every((link) => link.startsWith('/'))) {
      downloaded = Number(process.hrtime.bigint() - t0) / 1e9;
      break;
    }
  }
  const cached = (await readdir(join(work, 'layers'))).filter((name) => name.startsWith('sha256=')).length;
  console.log(`
gcfs demo (issues 2-5: registry, cfsd, gcfsd FUSE + downloader; containerd arrives with issue 6)
  image               ${image}: ${built.layers.length} layers, ${(imageBytes / MiB).toFixed(1)} MiB compressed
  first output        ${JSON.stringify(stdout.trim())} after ${firstOutput.toFixed(2)} s
                      (${registered.toFixed(2)} s registering: AuthImage, which indexes the image in cfsd the
                      first time it is ever asked for, then overlay mount + chroot run)
  streamed from cfsd  ${(streamed / MiB).toFixed(2)} MiB before the first output (${((100 * streamed) / imageBytes).toFixed(1)}% of the image)
  links then          ${linksBefore.map((l) => (l.startsWith('/') ? 'local' : 'streamed')).join(', ')}
  downloads           ${downloaded ? `all ${cached} layers local after ${downloaded.toFixed(1)} s; links now point into ${join(work, 'layers')}` : 'not finished within 10 min'}
  logs                ${work}/{cfsd,gcfsd,downloader}.log`);
  if (keep) {
    console.log(`  kept running        mount ${mnt}, merged view ${merged}; Ctrl-C stops everything`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
  }
} catch (err) {
  log.error('Demo failed', { error: describeError(err) });
  process.exitCode = 1;
} finally {
  admin?.close();
  if (merged) await execFile('umount', ['-l', merged]).catch(() => {});
  for (const child of started.reverse()) await child.stop();
  await registry?.stop();
  if (!keep) await rm(work, { recursive: true, force: true }).catch(() => {});
}
