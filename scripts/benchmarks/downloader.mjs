// Downloader figures: untarLayer (gunzip → tar reader → files, as the downloader unpacks a
// layer) against GNU `tar -xzf` of the same blob into a directory on the same disk, one
// layer at a time and three at once. The layer is built from real trees (hard-link copies
// of system directories) and cached under /var/tmp/gcfs-bench-cache across runs.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { untarLayer } from '@gcfs/downloader';
import { buildImage, OciLayout } from '@gcfs/image-builder';
import { compressionOf, decompressLayer } from '@gcfs/index';
import { MiB, median, resultsDir, spread, timed, writeResult } from './lib.mjs';

export const CACHE_DIR = '/var/tmp/gcfs-bench-cache';
// /var/tmp: on the same file system as /usr (for `cp -al`) and, unlike /tmp, not a tmpfs anywhere.
const WORK_PARENT = '/var/tmp';

export function sh(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${code ?? signal})`)),
    );
  });
}

/**
 * The gzip layer made of `sources` (one top-level dir each), built once and kept under the
 * cache: keyed by the sources and their top-level mtimes, so a changed tree builds anew.
 */
export async function cachedLayer(sources) {
  const stamps = await Promise.all(sources.map(async (s) => `${s}@${(await stat(s)).mtimeMs}`));
  const key = createHash('sha256').update(JSON.stringify(stamps)).digest('hex').slice(0, 16);
  const dir = join(CACHE_DIR, `layer-${key}`);
  const meta = join(dir, 'layer.json');
  if (!existsSync(meta)) {
    await mkdir(CACHE_DIR, { recursive: true });
    const building = await mkdtemp(join(CACHE_DIR, 'building-'));
    try {
      const tree = join(building, 'tree');
      await mkdir(tree);
      for (const source of sources) await sh('cp', ['-al', source, join(tree, source.replaceAll('/', '_'))]);
      console.log(`building the benchmark layer from ${sources.join(' ')} (cached in ${dir})`);
      const built = await buildImage(
        { layers: [{ compression: 'gzip', fromDirectory: tree }] },
        { layoutDir: join(building, 'layout') },
      );
      await rm(tree, { recursive: true, force: true });
      const layer = built.layers[0];
      await writeFile(
        join(building, 'layer.json'),
        JSON.stringify({ sources, descriptor: layer.descriptor, uncompressedSize: layer.uncompressedSize }),
      );
      await rm(dir, { recursive: true, force: true });
      await rename(building, dir);
    } finally {
      await rm(building, { recursive: true, force: true });
    }
  }
  const { descriptor, uncompressedSize } = JSON.parse(await readFile(meta, 'utf8'));
  const blob = (await OciLayout.open(join(dir, 'layout'))).blobPath(descriptor.digest);
  return { descriptor, uncompressedSize, blob };
}

function untar(layer, dest) {
  const tar = decompressLayer(createReadStream(layer.blob), compressionOf(layer.descriptor.mediaType));
  return untarLayer(tar, dest);
}

function gnuTar(layer, dest) {
  return mkdir(dest).then(() => sh('tar', ['-xzf', layer.blob, '-C', dest]));
}

/** Seconds to unpack `count` copies at once with `extract`; writeback of earlier runs flushed first. */
async function unpackAll(work, label, count, extract) {
  const dests = Array.from({ length: count }, (_, i) => join(work, `${label}-${i}`));
  await sh('sync', []);
  try {
    const { seconds } = await timed(() => Promise.all(dests.map((dest) => extract(dest))));
    return seconds;
  } finally {
    await Promise.all(dests.map((dest) => rm(dest, { recursive: true, force: true })));
  }
}

/** Alternating runs (tar first, then ours, then the other way round) so both see the same noise. */
async function compare(layer, work, count, runs) {
  const tarSeconds = [];
  const untarSeconds = [];
  for (let i = 0; i < runs; i++) {
    const order = [
      () => unpackAll(work, 'tar', count, (dest) => gnuTar(layer, dest)).then((s) => tarSeconds.push(s)),
      () => unpackAll(work, 'untar', count, (dest) => untar(layer, dest)).then((s) => untarSeconds.push(s)),
    ];
    if (i % 2) order.reverse();
    for (const step of order) await step();
  }
  const bytes = count * layer.descriptor.size;
  return {
    layers: count,
    tar_xzf_seconds: median(tarSeconds),
    untar_seconds: median(untarSeconds),
    // Throughput ratio: above 1 means faster than GNU tar.
    untar_vs_tar: median(tarSeconds) / median(untarSeconds),
    untar_gzip_mib_per_s: bytes / MiB / median(untarSeconds),
    tar_gzip_mib_per_s: bytes / MiB / median(tarSeconds),
    tar_samples: tarSeconds,
    untar_samples: untarSeconds,
    noisy: spread(tarSeconds) > 0.5 || spread(untarSeconds) > 0.5,
  };
}

export async function run({ quick }) {
  const sources = quick ? ['/usr/share/doc', '/usr/share/perl'] : ['/usr/lib/x86_64-linux-gnu', '/usr/share'];
  const runs = quick ? 3 : 5;
  const layer = await cachedLayer(sources);
  const work = await mkdtemp(join(WORK_PARENT, 'gcfs-bench-downloader-'));
  try {
    // One untouched extraction first: the blob in the page cache for every timed run.
    await unpackAll(work, 'warm', 1, (dest) => gnuTar(layer, dest));
    return {
      benchmark: 'downloader',
      sources,
      layer_gzip_bytes: layer.descriptor.size,
      layer_tar_bytes: layer.uncompressedSize,
      runs,
      one: await compare(layer, work, 1, runs),
      three: await compare(layer, work, 3, runs),
      note: 'untar = decompressLayer(createReadStream(blob)) → untarLayer(dir), fsync off, one process; tar = GNU tar -xzf, one process per layer; sync before every run',
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function main(options) {
  const r = await run(options);
  const file = await writeResult('downloader', r, resultsDir(options));
  const row = (x) =>
    `${x.layers} layer(s): untar ${x.untar_seconds.toFixed(2)} s vs tar -xzf ${x.tar_xzf_seconds.toFixed(2)} s ` +
    `(${x.untar_vs_tar.toFixed(2)}x tar's throughput)${x.noisy ? ' (noisy)' : ''}`;
  console.log(
    `downloader untar of ${(r.layer_gzip_bytes / MiB).toFixed(0)} MiB gzip (${(r.layer_tar_bytes / MiB).toFixed(0)} MiB tar), ` +
      `median of ${r.runs}: ${row(r.one)}; ${row(r.three)} -> ${file}`,
  );
}
