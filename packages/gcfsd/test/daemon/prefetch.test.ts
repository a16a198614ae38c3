// Prefetching end to end, with the daemon (and so the FUSE server) in this process: a real
// registry, a real cfsd, the real mount. The mount is read only by child processes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startCfsd } from '@gcfs/cfsd';
import { CfsdClient } from '@gcfs/cfsd-client';
import { parseFlags } from '@gcfs/cli';
import { createLogger, imageDirName } from '@gcfs/core';
import { DownloaderClient } from '@gcfs/downloader';
import { cleanStaleMount } from '@gcfs/fuse';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { type AfterHook, makeTempDir, startRegistry, tempDirFor } from '@gcfs/testkit';
import { fuseMounter } from '../../src/daemon/fuse-tree.js';
import { type RunningDaemon, startDaemon } from '../../src/daemon/index.js';
import { GCFSD_FLAGS } from '../../src/flags.js';

const run = promisify(execFile);
const BLOCK_SIZE = 16 * 1024;

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

interface Node {
  daemon: RunningDaemon;
  mnt: string;
  logs: LogLine[];
  /** The first log line matching, once it is there. */
  waitFor(msg: string): Promise<LogLine>;
}

async function startNode(t: AfterHook, cfsdAddress: string, extraFlags: string[] = []): Promise<Node> {
  const nodeDir = await makeTempDir('gcfsd-prefetch-node-');
  const dir = nodeDir.path;
  const mnt = join(dir, 'mnt');
  let daemon: RunningDaemon | undefined;
  // One hook, in this order: never remove a directory through a live mount.
  t.after(async () => {
    await daemon?.stop();
    await cleanStaleMount(mnt);
    await nodeDir.cleanup();
  });
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ format: 'json', level: 'debug', destination: sink });
  const flags = parseFlags(GCFSD_FLAGS, [
    `--mount_point=${mnt}`,
    `--addr=${cfsdAddress}`,
    `--layer_cache_dir=${join(dir, 'layers')}`,
    `--images_in_use_db_path=${join(dir, 'db', 'images_in_use.db')}`,
    '--snapshotter_uds_path=',
    // No downloader: every layer stays streamed through FUSE.
    `--downloader_uds_path=${join(dir, 'no-downloader.sock')}`,
    '--port=0',
    '--gc_period=0',
    '--client_uid=test',
    ...extraFlags,
  ]);
  assert.equal(flags.action, 'run');
  if (flags.action !== 'run') throw new Error('unreachable');
  daemon = await startDaemon(flags.values, {
    mount: fuseMounter(logger),
    downloader: new DownloaderClient(join(dir, 'no-downloader.sock')),
    logger,
    version: 'test',
    readReports: { windowMs: 120_000, idleMs: 500 },
  });
  const waitFor = async (msg: string) => {
    for (let i = 0; i < 600; i++) {
      const line = logs.find((entry) => entry.msg === msg);
      if (line !== undefined) return line;
      await delay(100);
    }
    assert.fail(`never logged: ${msg}`);
  };
  return { daemon, mnt, logs, waitFor };
}

async function sh(script: string): Promise<string> {
  return (await run('sh', ['-c', script], { timeout: 30_000 })).stdout;
}

async function counter(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((sum, { value }) => sum + value, 0);
}

/** Block indexes of a file's content in its layer. */
function blocksOf(entry: { contentOffset: number; size: number }): number[] {
  const first = Math.floor(entry.contentOffset / BLOCK_SIZE);
  const last = Math.floor((entry.contentOffset + entry.size - 1) / BLOCK_SIZE);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

test('prefetching: no report logs the error, start-up reads are reported, and the next node prefetches them so reads hit the cache', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = await tempDirFor(t, 'gcfsd-prefetch-layout-');
  const built = await buildImage(
    {
      layers: [
        {
          compression: 'gzip',
          entries: [
            { type: 'dir', path: 'app', mode: 0o755 },
            { type: 'file', path: 'app/main', content: { size: 20 * BLOCK_SIZE + 17, seed: 'main' } },
            { type: 'file', path: 'app/unread', content: { size: 20 * BLOCK_SIZE, seed: 'unread' } },
          ],
        },
      ],
    },
    { layoutDir: layout.path },
  );
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'prefetch/app', tag: 'v1' });
  await pusher.close();
  const image = `${registry.host}/prefetch/app:v1`;
  const layer = built.layers[0]!.descriptor.digest as string;

  const store = await tempDirFor(t, 'gcfsd-prefetch-store-');
  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${store.path}`,
    registry: { insecureHosts: ['127.0.0.1'] },
    blockSize: BLOCK_SIZE,
  });
  t.after(() => cfsd.stop(100));

  // The first node: cfsd has no report for the image yet.
  const first = await startNode(t, cfsd.address);
  await first.daemon.registrar.register(image, { wait: true });
  const failed = await first.waitFor('Prefetching for image failed');
  assert.equal(failed.level, 'error');
  assert.equal(failed.imageName, image);
  assert.equal(
    failed.error,
    `getting prefetch image report for imageName="${image}" failed: rpc error: code = FailedPrecondition desc = Precondition check failed.`,
  );

  // Its container starts: it reads app/main (through the image's lower dir), never app/unread.
  const imageDir = join(first.mnt, 'images', imageDirName(image));
  const mainSum = await sh(`sha256sum < ${imageDir}/0/app/main`);
  const reported = await first.waitFor('Reported image reads');
  assert.equal(reported.imageName, image);
  assert.ok(Number(reported.reads) >= 1);

  const client = new CfsdClient({ address: cfsd.address });
  t.after(() => client.close());
  const session = await client.authImage(image, {}, { wait: true });
  t.after(() => session.close());
  const report = await session.prefetchReport();
  assert.ok(report !== undefined, 'cfsd has no prefetch report after the node reported its reads');
  const { entries } = await session.layerIndex(layer);
  const main = blocksOf(entries.find((entry) => entry.name === 'app/main')!);
  const unread = blocksOf(entries.find((entry) => entry.name === 'app/unread')!).filter(
    (b) => !main.includes(b),
  );
  const reportedBlocks = new Set(
    report.ranges.flatMap((range) => Array.from({ length: range.count }, (_, i) => range.firstBlock + i)),
  );
  assert.deepEqual(
    main.filter((block) => !reportedBlocks.has(block)),
    [],
  );
  assert.deepEqual(
    unread.filter((block) => reportedBlocks.has(block)),
    [],
  );
  await first.daemon.stop();

  // A second node (cold cache, flattened views on) prefetches the report at registration.
  const second = await startNode(t, cfsd.address, ['--flatten_images']);
  await second.daemon.registrar.register(image, { wait: true });
  const done = await second.waitFor('Prefetching for image done');
  assert.ok(Number(done.blocks) >= main.length, JSON.stringify(done));
  const { metrics } = second.daemon;
  assert.ok((await counter(metrics.prefetchedBytes)) >= 20 * BLOCK_SIZE);
  const fetched = await counter(metrics.backendBytes);
  const misses = await counter(metrics.cacheMisses);
  const hits = await counter(metrics.cacheHits);
  assert.equal(
    await sh(`sha256sum < ${join(second.mnt, 'flattened', imageDirName(image))}/app/main`),
    mainSum,
  );
  assert.equal(await counter(metrics.backendBytes), fetched, 'the read fetched from cfsd');
  assert.equal(await counter(metrics.cacheMisses), misses);
  assert.ok((await counter(metrics.cacheHits)) > hits);
});
