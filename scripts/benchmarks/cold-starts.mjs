// The numbers that matter: time from CRI PullImage to the app's ready line on a cold node,
// gcfs against containerd's own overlayfs snapshotter (a full pull), per workload image and
// network profile, in one run. The registry and cfsd sit in a network namespace behind a
// veth shaped with tc tbf; containerd, gcfsd and its downloader run on the host. Each cold
// start gets a new containerd and a new gcfsd (empty layer cache), and the page cache is
// dropped; cfsd's index is kept warm (a regional service), and as many runs again go to a new
// cfsd on an empty store (the first pull of an image anywhere, the `cold` rows).
import { join } from 'node:path';
import { createLogger } from '@gcfs/core';
import { buildImage, PAUSE_IMAGE } from '@gcfs/image-builder';
import {
  freePort,
  listProcesses,
  makeTempDir,
  startCfsdProcess,
  startGcfsStack,
  startRegistry,
  startShapedNetwork,
} from '@gcfs/testkit';
import { cleanupList, coldStart, dropCaches, peakRss, pushBuilt, untilLayersLocal } from './cold-start.mjs';
import { median, resultsDir, spread } from './lib.mjs';
import { writeReport } from './report.mjs';
import { buildWorkload } from './workloads.mjs';

const log = createLogger({ level: 'info' }).child({ module: 'bench' });
const NETWORKS = [
  { name: 'unshaped', rateMbit: undefined },
  { name: '1gbit', rateMbit: 1000 },
  { name: '100mbit', rateMbit: 100 },
];
const NOISY_SPREAD = 0.5;

/** Pids of live processes whose command line contains every needle. */
async function pidsWith(...needles) {
  const all = await listProcesses();
  return all.filter((p) => needles.every((needle) => p.cmdline.includes(needle))).map((p) => p.pid);
}

/**
 * One gcfs cold start, then the background downloads to their end; RSS peaks of both node
 * processes. `cfsdAddress`: the long-running (regional) cfsd; `cfsdStore`: a new cfsd of the
 * node's own on that store instead (the cold-backend rows).
 */
async function gcfsColdStart({ net, registry, sandboxImage, workload, image, cfsdAddress, cfsdStore }) {
  const node = cleanupList();
  try {
    const stack = await startGcfsStack({
      insecureRegistry: net.nsAddress,
      // As a node runs it: small images (busybox, the pause image) are pulled normally.
      minStreamedImageMb: 'default',
      ...(cfsdAddress
        ? { cfsdAddress }
        : { cfsdStore, cfsdNetwork: { wrap: net.wrap, address: net.nsAddress } }),
    });
    node.after(() => stack.stop());
    const run = await coldStart({
      registryHost: registry.host,
      sandboxImage,
      image,
      ready: workload.ready,
      stack,
      bytes: () => net.bytesFromNamespace(),
      cleanups: node,
    });
    await untilLayersLocal(stack, 900_000);
    run.downloadedSeconds = (performance.now() - run.t0) / 1000;
    run.bytesUntilDownloaded = (await net.bytesFromNamespace()) - run.bytesAtStart;
    run.fallbacks = await stack.metric('gcfsd_image_streaming_fallbacks_total');
    let rss = 0;
    for (const pid of await pidsWith(`--mount_point=${stack.mountPoint}`))
      rss = Math.max(rss, await peakRss(pid));
    let downloaderRss = 0;
    // `--downloader` as a whole argument: the FUSE gcfsd has --downloader_uds_path.
    for (const pid of await pidsWith('\0--downloader\0', stack.cacheDir)) downloaderRss = await peakRss(pid);
    run.rssPeak = rss;
    run.downloaderRssPeak = downloaderRss;
    return run;
  } finally {
    await node.run();
  }
}

async function overlayfsColdStart({ net, registry, sandboxImage, workload, image }) {
  const node = cleanupList();
  try {
    const run = await coldStart({
      registryHost: registry.host,
      sandboxImage,
      image,
      ready: workload.ready,
      bytes: () => net.bytesFromNamespace(),
      cleanups: node,
    });
    run.rssPeak = 0;
    return run;
  } finally {
    await node.run();
  }
}

function row({ workload, network, mode, coldBackend, runs }) {
  const times = runs.map((r) => r.seconds);
  const rate = network.rateMbit === undefined ? undefined : (network.rateMbit * 1e6) / 8;
  return {
    image: workload.name,
    image_bytes: workload.imageBytes,
    unpacked_bytes: workload.unpackedBytes,
    working_set_bytes: workload.workingSet.bytes,
    network: network.name,
    mode,
    cold_backend: coldBackend,
    time_to_ready_s: median(times),
    times_s: times,
    runs: runs.length,
    bytes_before_ready: median(runs.map((r) => r.bytesBeforeReady)),
    bytes_until_downloaded: mode === 'gcfs' ? median(runs.map((r) => r.bytesUntilDownloaded)) : undefined,
    downloaded_s: mode === 'gcfs' ? median(runs.map((r) => r.downloadedSeconds)) : undefined,
    rss_peak_bytes: Math.max(...runs.map((r) => r.rssPeak)),
    downloader_rss_peak_bytes:
      mode === 'gcfs' ? Math.max(...runs.map((r) => r.downloaderRssPeak)) : undefined,
    fallbacks: mode === 'gcfs' ? Math.max(...runs.map((r) => r.fallbacks)) : undefined,
    // Working set over the link, plus one round of metadata (a few KiB; counted as 10 ms).
    lower_bound_s: rate === undefined ? null : workload.workingSet.bytes / rate + 0.01,
    noisy: runs.length > 1 && spread(times) > NOISY_SPREAD,
  };
}

export async function main({ quick }) {
  const images = quick ? ['small', 'medium'] : ['small', 'medium', 'large'];
  const networks = quick ? NETWORKS.filter((n) => n.name !== '1gbit') : NETWORKS;
  const runsPerRow = quick ? 1 : 3;
  const workloads = [];
  for (const name of images) workloads.push(await buildWorkload(name, { log: (line) => log.info(line) }));
  const pauseDir = await makeTempDir('gcfs-bench-pause-');
  const pause = await buildImage(PAUSE_IMAGE, { layoutDir: pauseDir.path });
  const warmStore = await makeTempDir('gcfs-bench-cfsd-');
  const rows = [];
  try {
    for (const network of networks) {
      const net = await startShapedNetwork({ rateMbit: network.rateMbit });
      const registry = await startRegistry({ listenHost: net.nsAddress, wrap: net.wrap });
      // The regional cfsd: it outlives the nodes' cold starts, its index and reports stay warm.
      const cfsdAddress = `${net.nsAddress}:${await freePort()}`;
      const cfsd = await startCfsdProcess({
        address: cfsdAddress,
        store: warmStore.path,
        insecureRegistry: net.nsAddress,
        logFile: join(pauseDir.path, `cfsd-${network.name}.log`),
        wrap: net.wrap,
      });
      try {
        const sandboxImage = await pushBuilt(registry.host, pause, 'bench/pause');
        let processWarm = false;
        for (const workload of workloads) {
          const image = await pushBuilt(registry.host, workload.built, `bench/${workload.name}`);
          const setup = { net, registry, sandboxImage, workload, image };
          // Unmeasured: index each image once, and warm each new cfsd process's code paths.
          if (network === networks[0] || !processWarm) await gcfsColdStart({ ...setup, cfsdAddress });
          processWarm = true;
          const results = { overlayfs: [], gcfs: [], cold: [] };
          // The three kinds take turns within a round, so that each sees the same machine load.
          for (let i = 0; i < runsPerRow; i++) {
            await dropCaches();
            results.overlayfs.push(await overlayfsColdStart(setup));
            await dropCaches();
            results.gcfs.push(await gcfsColdStart({ ...setup, cfsdAddress }));
            const coldStore = await makeTempDir('gcfs-bench-cfsd-cold-');
            try {
              await dropCaches();
              results.cold.push(await gcfsColdStart({ ...setup, cfsdStore: coldStore.path }));
            } finally {
              await coldStore.cleanup();
            }
            log.info('cold start', {
              image: workload.name,
              network: network.name,
              overlayfs_s: results.overlayfs.at(-1).seconds.toFixed(2),
              gcfs_s: results.gcfs.at(-1).seconds.toFixed(2),
              cold_s: results.cold.at(-1).seconds.toFixed(2),
            });
          }
          rows.push(
            row({ workload, network, mode: 'overlayfs', coldBackend: false, runs: results.overlayfs }),
          );
          rows.push(row({ workload, network, mode: 'gcfs', coldBackend: false, runs: results.gcfs }));
          rows.push(row({ workload, network, mode: 'gcfs', coldBackend: true, runs: results.cold }));
        }
      } finally {
        await cfsd.stop();
        await registry.stop();
        await net.stop();
      }
    }
  } finally {
    await warmStore.cleanup();
    await pauseDir.cleanup();
  }
  const file = await writeReport(rows, { file: join(resultsDir({ quick }), 'latest.json') });
  console.log(`cold starts: ${rows.length} rows → ${file}`);
  for (const r of rows) {
    console.log(
      `${r.image.padEnd(7)} ${r.network.padEnd(9)} ${r.mode.padEnd(9)} ${r.cold_backend ? 'cold' : 'warm'}  ${r.time_to_ready_s.toFixed(2)} s  ${(r.bytes_before_ready / 2 ** 20).toFixed(1)} MiB before ready`,
    );
  }
}
