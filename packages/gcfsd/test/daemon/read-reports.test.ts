import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startCfsd } from '@gcfs/cfsd';
import { CfsdClient } from '@gcfs/cfsd-client';
import { createLogger } from '@gcfs/core';
import { buildImage, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { startRegistry, tempDirFor } from '@gcfs/testkit';
import { ReadReporter } from '../../src/daemon/read-reports.js';

const BLOCK_SIZE = 16 * 1024;
const KiB = 1024;

test('reads are merged when sequential, bounded per image, and sent once; cfsd reports exactly their blocks', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = await tempDirFor(t, 'gcfsd-reads-layout-');
  const files = ['seq', 'f0', 'f1', 'f2', 'f3'];
  const built = await buildImage(
    {
      layers: [
        {
          entries: files.map((name) => ({
            type: 'file' as const,
            path: name,
            content: { size: 4 * BLOCK_SIZE, seed: name },
          })),
        },
      ],
    },
    { layoutDir: layout.path },
  );
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'reads/app', tag: 'v1' });
  await pusher.close();
  const image = `${registry.host}/reads/app:v1`;
  const layer = built.layers[0]!.descriptor.digest as string;
  const store = await tempDirFor(t, 'gcfsd-reads-store-');
  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${store.path}`,
    registry: { insecureHosts: ['127.0.0.1'] },
    blockSize: BLOCK_SIZE,
  });
  t.after(() => cfsd.stop(100));
  const client = new CfsdClient({ address: cfsd.address });
  t.after(() => client.close());
  const session = await client.authImage(image, {}, { wait: true });
  t.after(() => session.close());

  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    format: 'json',
    level: 'debug',
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line));
        done();
      },
    }),
  });
  const reporter = new ReadReporter({
    sessionOf: (name) => (name === image ? session : undefined),
    logger,
    timing: { windowMs: 600_000, idleMs: 200, maxReads: 3 },
  });
  t.after(() => reporter.close());
  reporter.watch(image, [layer]);
  reporter.watch('other/image:v1', ['sha256:unrelated']);

  const reads: Array<[string, number, number]> = [
    ['seq', 0, 16 * KiB],
    ['seq', 16 * KiB, 16 * KiB], // continues the first: merged
    ['f0', 0, 100],
    ['f1', 0, 100],
    ['f2', 0, 100], // beyond maxReads: dropped
    ['f3', 5 * KiB, 100], // dropped
    ['seq', 32 * KiB, 16 * KiB], // still merges into the first record
  ];
  for (const [path, offset, bytes] of reads) reporter.record({ layer, path, offset, bytes });
  reporter.record({ layer: 'sha256:unrelated-to-the-image', path: 'seq', offset: 0, bytes: 10 });

  let sent: Record<string, unknown> | undefined;
  for (let i = 0; i < 300 && sent === undefined; i++) {
    sent = logs.find((line) => line.msg === 'Reported image reads');
    if (sent === undefined) await delay(50);
  }
  assert.ok(sent !== undefined, 'the reads were never reported');
  assert.equal(sent.imageName, image);
  assert.equal(sent.reads, 3);
  assert.equal(sent.dropped, 2);

  const { entries } = await session.layerIndex(layer);
  const expected = new Set<number>();
  for (const [path, offset, length] of [
    ['seq', 0, 48 * KiB],
    ['f0', 0, 100],
    ['f1', 0, 100],
  ] as const) {
    const entry = entries.find((e) => e.name === path)!;
    const start = entry.contentOffset + offset;
    for (let b = Math.floor(start / BLOCK_SIZE); b <= Math.floor((start + length - 1) / BLOCK_SIZE); b++)
      expected.add(b);
  }
  const report = await session.prefetchReport();
  assert.ok(report !== undefined);
  assert.equal(report.reports, 1);
  const reported = report.ranges.flatMap((range) =>
    Array.from({ length: range.count }, (_, i) => range.firstBlock + i),
  );
  assert.deepEqual(
    reported.toSorted((a, b) => a - b),
    [...expected].sort((a, b) => a - b),
  );
  // Sent once: later reads of the image are not recorded any more.
  reporter.record({ layer, path: 'f2', offset: 0, bytes: 100 });
  await delay(400);
  assert.equal(logs.filter((line) => line.msg === 'Reported image reads').length, 1);

  // Watched again, then gcfsd stops before the window ends: close() sends what it has.
  reporter.watch(image, [layer]);
  reporter.record({ layer, path: 'f3', offset: 0, bytes: 100 });
  await reporter.close();
  assert.equal(logs.filter((line) => line.msg === 'Reported image reads').length, 2);
  assert.equal((await session.prefetchReport())?.reports, 2);
});
