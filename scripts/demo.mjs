// The main job: a cold node starts a container from a realistic image through containerd's
// CRI, as kubelet would, with gcfs streaming the image, and the same with containerd's own
// overlayfs snapshotter (a full pull) for comparison, in the same run. On loopback: Debian's
// docker-registry, cfsd (file store, kept warm between runs in the cache dir, as a regional
// service would be), `gcfsd --downloader`, `gcfsd` (FUSE + snapshotter) and containerd 1.6
// configured as GKE configures it. The image (Debian bookworm + python3 + numpy, built with
// debootstrap) is cached between runs.
// Usage: scripts/demo [--keep] [--runs N]
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, describeError } from '@gcfs/core';
import { buildDebianImage, buildImage, PAUSE_IMAGE } from '@gcfs/image-builder';
import { startGcfsStack, startRegistry, tempDirFor } from '@gcfs/testkit';
import { cleanupList, coldStart, dropCaches, pushBuilt, untilLayersLocal } from './benchmarks/cold-start.mjs';
import { WORKLOADS, WORKLOADS_DIR } from './benchmarks/workloads.mjs';

const WORKLOAD = WORKLOADS.medium.debian;

const CACHE = '/var/tmp/gcfs-demo-cache';
const MiB = 2 ** 20;
const { values: args } = parseArgs({
  options: { keep: { type: 'boolean' }, runs: { type: 'string', default: '1' } },
});
const runs = Math.max(1, Number(args.runs));
const log = createLogger({ level: 'info' }).child({ module: 'demo' });

const demo = cleanupList();
const node = cleanupList();

async function gcfsRun(setup) {
  const stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1',
    cfsdStore: join(CACHE, 'cfsd-store'),
    minStreamedImageMb: 'default',
  });
  node.after(() => stack.stop());
  const result = await coldStart({ ...setup, stack, cleanups: node });
  result.streamedBytes = await stack.metric('gcfsd_backend_fetched_bytes_total');
  result.remoteLayers = await stack.metric('gcfsd_remote_snapshots_total');
  // The pause image is pulled normally by design (under --min_streamed_image_size_mb).
  result.fallbacks =
    (await stack.metric('gcfsd_image_streaming_fallbacks_total')) -
    (await stack.metric('gcfsd_image_streaming_fallbacks_total', 'reason="ERR_IMAGE_TOO_SMALL"'));
  if (await untilLayersLocal(stack, 300_000)) {
    result.downloadedAfter = (performance.now() - result.t0) / 1000;
  }
  result.logs = stack.dir;
  return result;
}

const median = (values) => values.toSorted((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

try {
  await mkdir(CACHE, { recursive: true });
  log.info('Building the image (cached after the first run)', { workload: WORKLOAD.name });
  const built = await buildDebianImage(WORKLOAD, { cacheDir: WORKLOADS_DIR, log: (line) => log.info(line) });
  const layers = built.manifests[0].layers;
  const compressed = layers.reduce((sum, layer) => sum + layer.descriptor.size, 0);
  const unpacked = layers.reduce((sum, layer) => sum + layer.uncompressedSize, 0);
  const registry = await startRegistry();
  demo.after(() => registry.stop());
  const pauseDir = await tempDirFor(demo, 'gcfs-demo-pause-');
  const sandboxImage = await pushBuilt(
    registry.host,
    await buildImage(PAUSE_IMAGE, { layoutDir: pauseDir.path }),
    'demo/pause',
    'v1',
  );
  const image = await pushBuilt(registry.host, built, 'demo/python-numpy', 'v1');
  const indexMarker = join(
    CACHE,
    `indexed-${layers.map((layer) => layer.descriptor.digest.slice(7, 19)).join('-')}`,
  );
  const coldIndex = !existsSync(indexMarker);
  log.info('Image pushed', { image, layers: layers.length, compressed_mib: (compressed / MiB).toFixed(1) });
  if (coldIndex) log.info('cfsd has not indexed this image yet: the first gcfs start includes indexing it');

  const setup = { registryHost: registry.host, sandboxImage, image };
  const results = { gcfs: [], overlayfs: [] };
  for (let run = 1; run <= runs; run++) {
    // Each run starts from a settled disk and a cold page cache, as a new node would.
    await dropCaches();
    const baseline = await coldStart({ ...setup, cleanups: node });
    results.overlayfs.push(baseline);
    log.info('overlayfs cold start', { run, seconds: baseline.seconds.toFixed(2), output: baseline.output });
    await node.run();
    await dropCaches();
    const streamed = await gcfsRun(setup);
    results.gcfs.push(streamed);
    log.info('gcfs cold start', { run, seconds: streamed.seconds.toFixed(2), output: streamed.output });
    await writeFile(indexMarker, '');
    if (run < runs) await node.run();
  }
  const g = median(results.gcfs.map((r) => r.seconds));
  const o = median(results.overlayfs.map((r) => r.seconds));
  const lastGcfs = results.gcfs.at(-1);
  const streamedMiB = lastGcfs.streamedBytes / MiB;
  console.log(`
gcfs demo: ${image}
  image               Debian bookworm + python3 + numpy, ${layers.length} layers, ${(compressed / MiB).toFixed(1)} MiB compressed, ${(unpacked / MiB).toFixed(1)} MiB unpacked
  container said      ${JSON.stringify(lastGcfs.output)}
  streamed?           ${lastGcfs.fallbacks === 0 && lastGcfs.remoteLayers >= layers.length ? `yes: ${lastGcfs.remoteLayers} layers were remote snapshots, no layer blob pulled by containerd` : `NO: fell back to a normal pull (${lastGcfs.fallbacks} fallbacks; see ${lastGcfs.logs}/gcfsd.log)`}
  time to first output (CRI PullImage → the container's first log line, pod sandbox included; median of ${runs}):
    gcfs              ${g.toFixed(2)} s   (${results.gcfs.map((r) => r.seconds.toFixed(2)).join(', ')})${coldIndex ? '  [first run includes cfsd indexing the image]' : ''}
    overlayfs         ${o.toFixed(2)} s   (${results.overlayfs.map((r) => r.seconds.toFixed(2)).join(', ')})  containerd's own full pull
    ratio             ${(g / o).toFixed(2)}x
  bytes               ${streamedMiB.toFixed(1)} MiB of file content fetched from cfsd before the first output (${((100 * lastGcfs.streamedBytes) / unpacked).toFixed(1)}% of the unpacked image; blocks travel zstd-compressed)
  background download ${lastGcfs.downloadedAfter ? `all layers local ${lastGcfs.downloadedAfter.toFixed(1)} s after the pull started` : 'not finished within 5 min'}`);
  if (args.keep) {
    console.log(`  kept running        gcfsd mount and logs under ${lastGcfs.logs}; Ctrl-C stops everything`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
  }
} catch (err) {
  log.error('Demo failed', { error: describeError(err) });
  process.exitCode = 1;
} finally {
  await node.run();
  await demo.run();
}
