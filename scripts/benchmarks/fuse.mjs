// FUSE figures: reads of a cached layer through `layers/` (every block already in the
// content cache) against the same files extracted on local disk (page cache warm), the
// stat of every entry of a 50,000-file layer, and the real gcfsd's RSS with 10 images.
// This process serves the in-process mount, so every read of it runs in a child process.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startCfsd } from '@gcfs/cfsd';
import { CfsdClient } from '@gcfs/cfsd-client';
import { cleanStaleMount, mountGcfs } from '@gcfs/fuse';
import { AdminClient, adminSocketPath } from '@gcfs/gcfsd';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { startProcess, startRegistry } from '@gcfs/testkit';
import { sh } from './downloader.mjs';
import { MiB, median, ROOT, resultsDir, spread, timed, writeResult } from './lib.mjs';

const execFileP = promisify(execFile);
const GCFSD_BIN = join(ROOT, 'packages', 'gcfsd', 'bin', 'gcfsd');
const MANY_FILES = 50_000;
const READ_SIZE = 4096;

// Run by a child node: `reads` positioned 4 KiB reads at random aligned offsets across the
// files (opened once); prints the seconds they took, node's start-up excluded.
const RANDOM_READER = `
const { openSync, readSync, fstatSync } = require('node:fs');
const [reads, ...paths] = process.argv.slice(1);
const files = paths.map((p) => { const fd = openSync(p, 'r'); return { fd, pages: Math.floor(fstatSync(fd).size / ${READ_SIZE}) }; });
const buf = Buffer.alloc(${READ_SIZE});
const start = process.hrtime.bigint();
for (let i = 0; i < Number(reads); i++) {
  const f = files[Math.floor(Math.random() * files.length)];
  const offset = Math.floor(Math.random() * f.pages) * ${READ_SIZE};
  if (readSync(f.fd, buf, 0, ${READ_SIZE}, offset) !== ${READ_SIZE}) throw new Error('short read');
}
process.stdout.write(String(Number(process.hrtime.bigint() - start) / 1e9));
`;

function layerDir(root, digest) {
  return join(root, 'layers', digest.replace(':', '='));
}

/** The benchmark image: a layer of big files for reads, and one of MANY_FILES small files for find. */
function imageSpec(bigFiles, bigFileMiB) {
  const big = Array.from({ length: bigFiles }, (_, i) => ({
    type: 'file',
    path: `big/file-${i}`,
    mode: 0o644,
    content: { size: bigFileMiB * MiB, seed: `big-${i}` },
  }));
  const many = [];
  for (let d = 0; d < MANY_FILES / 100; d++) {
    many.push({ type: 'dir', path: `d${d}`, mode: 0o755 });
    for (let f = 0; f < 100; f++)
      many.push({ type: 'file', path: `d${d}/f${f}`, mode: 0o644, content: `${d}/${f}\n` });
  }
  return {
    layers: [
      { compression: 'gzip', entries: big },
      { compression: 'gzip', entries: many },
    ],
  };
}

/** Seconds a child process takes (start-up included: the same for both sides). */
async function childSeconds(script) {
  return (await timed(() => execFileP('sh', ['-c', script], { maxBuffer: 64 * MiB }))).seconds;
}

async function randomReadSeconds(files, reads) {
  const { stdout } = await execFileP(process.execPath, ['-e', RANDOM_READER, String(reads), ...files]);
  return Number(stdout);
}

/** Alternating runs of `measure(root)` on local disk and through FUSE; medians and ratio. */
async function compare(runs, measure, local, fuse) {
  const localSamples = [];
  const fuseSamples = [];
  for (let i = 0; i < runs; i++) {
    const order = [
      async () => localSamples.push(await measure(local)),
      async () => fuseSamples.push(await measure(fuse)),
    ];
    if (i % 2) order.reverse();
    for (const step of order) await step();
  }
  return {
    local_seconds: median(localSamples),
    fuse_seconds: median(fuseSamples),
    // Throughput ratio: 1 is as fast as local disk.
    fuse_vs_local: median(localSamples) / median(fuseSamples),
    local_samples: localSamples,
    fuse_samples: fuseSamples,
    noisy: spread(localSamples) > 0.5 || spread(fuseSamples) > 0.5,
  };
}

async function readBenchmarks({ quick, runs, registry, work, kernelCache }) {
  const bigFiles = 4;
  const bigFileMiB = quick ? 32 : 128;
  // gzip level 1: the random content does not compress anyway, and the build stays quick.
  const built = await buildImage(imageSpec(bigFiles, bigFileMiB), {
    layoutDir: join(work, 'layout'),
    gzipLevel: 1,
  });
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'bench/fuse', tag: 'v1' });
  await pusher.close();
  const [bigLayer, manyLayer] = built.layers.map((layer) => layer.descriptor.digest);

  // The same layers on local disk, as GNU tar extracts them.
  const local = join(work, 'local');
  for (const digest of [bigLayer, manyLayer]) {
    const dest = layerDir(local, digest);
    await mkdir(dest, { recursive: true });
    await sh('tar', ['-xzf', join(built.layoutDir, 'blobs', ...digest.split(':')), '-C', dest]);
  }

  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${join(work, 'store')}`,
    registry: { insecureHosts: ['127.0.0.1'] },
  });
  const client = new CfsdClient({ address: cfsd.address });
  const mnt = join(work, 'mnt');
  let mount;
  try {
    const image = `${registry.host}/bench/fuse:v1`;
    const session = await client.authImage(image, {}, { wait: true });
    // A content cache that holds the whole big layer: the reads measured never leave gcfsd.
    mount = await mountGcfs({
      mountPoint: mnt,
      kernelCache,
      content: { cacheBytes: 2 * bigFiles * bigFileMiB * MiB },
    });
    for (const digest of [bigLayer, manyLayer]) {
      mount.tree.addLayer(digest, { table: await session.layerIndex(digest), remote: session });
    }
    const files = (root) =>
      Array.from({ length: bigFiles }, (_, i) => join(layerDir(root, bigLayer), 'big', `file-${i}`));
    await childSeconds(`cat ${files(mnt).join(' ')} > /dev/null`);
    const cache = mount.stats();

    const sequential = await compare(
      runs,
      (root) =>
        childSeconds(
          files(root)
            .map((f) => `dd if=${f} of=/dev/null bs=1M status=none`)
            .join(' && '),
        ),
      local,
      mnt,
    );
    const reads = quick ? 5_000 : 20_000;
    const random = await compare(runs, (root) => randomReadSeconds(files(root), reads), local, mnt);
    const find = await compare(
      runs,
      (root) =>
        childSeconds(`find ${layerDir(root, manyLayer)} -printf '%i %s %m %U %G %T@ %p\\n' > /dev/null`),
      local,
      mnt,
    );
    const bytes = bigFiles * bigFileMiB * MiB;
    return {
      block_size: session.layers?.[0]?.blockSize,
      cache_after_warm_up: cache,
      sequential: {
        bytes,
        local_mib_per_s: bytes / MiB / sequential.local_seconds,
        fuse_mib_per_s: bytes / MiB / sequential.fuse_seconds,
        ...sequential,
      },
      random_4k: {
        reads,
        local_iops: reads / random.local_seconds,
        fuse_iops: reads / random.fuse_seconds,
        ...random,
      },
      find: { entries: MANY_FILES + MANY_FILES / 100, ...find },
    };
  } finally {
    await mount?.unmount().catch(() => {});
    await cleanStaleMount(mnt);
    client.close();
    await cfsd.stop(100);
  }
}

function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]) * 1024;
  return { rss_bytes: kib('VmRSS'), hwm_bytes: kib('VmHWM') };
}

/** The real gcfsd (with cfsd and the real downloader process): RSS idle, then with 10 images. */
async function rssBenchmark({ registry, work }) {
  const images = [];
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  for (let i = 0; i < 10; i++) {
    const built = await buildImage(
      {
        layers: [
          {
            compression: 'gzip',
            entries: Array.from({ length: 200 }, (_, f) => ({
              type: 'file',
              path: `app/f${f}`,
              mode: 0o644,
              content: { size: 8192, seed: `image-${i}-${f}` },
            })),
          },
          { compression: 'gzip', entries: [{ type: 'file', path: 'etc/id', content: `image ${i}\n` }] },
        ],
      },
      { layoutDir: join(work, `rss-layout-${i}`) },
    );
    await pushImage(pusher, built, { registry: registry.host, repository: `bench/rss${i}`, tag: 'v1' });
    images.push(`${registry.host}/bench/rss${i}:v1`);
  }
  await pusher.close();

  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${join(work, 'rss-store')}`,
    registry: { insecureHosts: ['127.0.0.1'] },
  });
  const dir = join(work, 'gcfsd');
  const mnt = join(dir, 'run', 'mnt');
  const cacheDir = join(dir, 'layers');
  const common = [
    `--downloader_uds_path=${join(dir, 'run', 'downloader.sock')}`,
    `--layer_cache_dir=${cacheDir}`,
  ];
  const children = [];
  let admin;
  try {
    children.push(
      await startProcess({
        name: 'gcfsd --downloader',
        command: GCFSD_BIN,
        args: ['--downloader', ...common, '--insecure_registry=127.0.0.1'],
        ready: { logLine: /Layer downloader serving/ },
      }),
    );
    const gcfsd = await startProcess({
      name: 'gcfsd',
      command: GCFSD_BIN,
      args: [
        ...common,
        `--mount_point=${mnt}`,
        `--addr=${cfsd.address}`,
        `--images_in_use_db_path=${join(dir, 'db', 'images_in_use.db')}`,
        '--port=0',
        '--gc_period=0',
      ],
      ready: { logLine: /GCFSD: serving/ },
    });
    children.push(gcfsd);
    // bin/gcfsd execs node: the pid is gcfsd's own.
    const pid = gcfsd.pid;
    await delay(2000);
    const idle = status(pid);
    admin = new AdminClient(adminSocketPath(mnt));
    const registered = [];
    for (const image of images) registered.push(await admin.register(image));
    // Every layer downloaded and switched to its local copy, as on a node after pulls.
    for (let i = 0; ; i++) {
      const links = await Promise.all(
        registered.flatMap((r) => [0, 1].map((l) => readlink(join(mnt, r.path, String(l))))),
      );
      if (links.every((link) => link.startsWith(cacheDir))) break;
      if (i > 1200) throw new Error('the layers were never downloaded');
      await delay(100);
    }
    // gcfsd is another process: reading its mount from here is safe.
    for (const r of registered) await readFile(join(mnt, r.path, '1', 'etc', 'id'));
    await delay(2000);
    const loaded = status(pid);
    return {
      images: images.length,
      layers_per_image: 2,
      idle,
      with_images: loaded,
      rss_growth_bytes: loaded.rss_bytes - idle.rss_bytes,
      rss_vs_idle: loaded.rss_bytes / idle.rss_bytes,
    };
  } finally {
    admin?.close?.();
    for (const child of children.reverse()) await child.stop();
    await cleanStaleMount(mnt);
    await cfsd.stop(100);
  }
}

export async function run({ quick }) {
  const runs = quick ? 3 : 5;
  const work = await mkdtemp(join('/var/tmp', 'gcfs-bench-fuse-'));
  const registry = await startRegistry();
  try {
    return {
      benchmark: 'fuse',
      runs,
      // The default mount: the kernel keeps content, names and attributes of the immutable layers.
      ...(await readBenchmarks({ quick, runs, registry, work, kernelCache: true })),
      // Every read and stat answered by gcfsd itself, from its content cache.
      gcfsd_path: await readBenchmarks({
        quick,
        runs,
        registry,
        work: join(work, 'no-kcache'),
        kernelCache: false,
      }),
      gcfsd_rss: await rssBenchmark({ registry, work }),
      note: 'local = the same layers extracted by GNU tar on local disk, page cache warm; fuse = layers/ of an in-process mount (cfsd on loopback) after one read of the files: with the default kernel_cache and 30 s entry/attr timeouts, and (gcfsd_path) without them, where every request reaches gcfsd and is served from its content cache; reads by child processes (dd, find, a node child for random preads)',
    };
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

export async function main(options) {
  const r = await run(options);
  const file = await writeResult('fuse', r, resultsDir(options));
  const flag = (x) => (x.noisy ? ' (noisy)' : '');
  const mib = (b) => (b / MiB).toFixed(0);
  console.log(
    `fuse, median of ${r.runs}: sequential ${r.sequential.fuse_mib_per_s.toFixed(0)} vs local ${r.sequential.local_mib_per_s.toFixed(0)} MiB/s ` +
      `(${r.sequential.fuse_vs_local.toFixed(2)})${flag(r.sequential)}; random 4 KiB ${r.random_4k.fuse_iops.toFixed(0)} vs ${r.random_4k.local_iops.toFixed(0)} reads/s ` +
      `(${r.random_4k.fuse_vs_local.toFixed(2)})${flag(r.random_4k)}; find of ${r.find.entries} entries ${r.find.fuse_seconds.toFixed(2)} vs ${r.find.local_seconds.toFixed(2)} s ` +
      `(${r.find.fuse_vs_local.toFixed(2)})${flag(r.find)}; gcfsd RSS idle ${mib(r.gcfsd_rss.idle.rss_bytes)} MiB, with ${r.gcfsd_rss.images} images ` +
      `${mib(r.gcfsd_rss.with_images.rss_bytes)} MiB (peak ${mib(r.gcfsd_rss.with_images.hwm_bytes)} MiB); ` +
      `without the kernel cache: sequential ${r.gcfsd_path.sequential.fuse_vs_local.toFixed(2)}, random ${r.gcfsd_path.random_4k.fuse_vs_local.toFixed(2)}, find ${r.gcfsd_path.find.fuse_vs_local.toFixed(2)} -> ${file}`,
  );
}
