// End to end through containerd 1.6's CRI, as kubelet drives it: images streamed by gcfs
// (remote snapshots over gcfsd's FUSE mount), downloaded in the background, collected, and
// pulled normally when they cannot be streamed.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { ImageSpec } from '@gcfs/image-builder';
import { tempDirFor } from '@gcfs/testkit';
import { busyboxEntries, dir, file } from './cri-images.js';
import { eventually, streamingNode } from './streaming-stack.js';

const execFileAsync = promisify(execFile);
const MiB = 2 ** 20;

/** Three layers: whiteouts and an opaque dir in the second, and a big file nobody reads. */
const APP_IMAGE: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    {
      entries: [
        ...busyboxEntries(),
        dir('data'),
        file('data/keep.txt', 'keep\n'),
        file('data/gone.txt', 'gone\n'),
        dir('opaque'),
        file('opaque/old.txt', 'old\n'),
        dir('big'),
        file('big/blob', { size: 8 * MiB, seed: 'never-read' }),
      ],
    },
    {
      entries: [
        { type: 'whiteout', path: 'data/gone.txt' },
        dir('opaque'),
        { type: 'opaque', path: 'opaque' },
        file('opaque/new.txt', 'new\n'),
      ],
    },
    { entries: [dir('app'), file('app/message', 'streamed hello\n')] },
  ],
};
const APP_SCRIPT =
  'cat /app/message; ls /data; ls /opaque; test -e /data/gone.txt && echo gone-is-visible; true';
const APP_OUTPUT = ['streamed hello', 'keep.txt', 'new.txt'];

test('CRI pull streams the image: containers start before any layer is downloaded, later ones read local copies, GC removes it all', async (t) => {
  // No downloader at first: every layer can only be read through FUSE.
  const node = await streamingNode(
    t,
    { 'test/app': APP_IMAGE },
    { downloader: false, gcfsdFlags: ['--gc_period=1s'] },
  );
  const { cri, stack, refs } = node;
  const image = refs['test/app']!;
  await cri.pullImage(image);
  assert.ok((await stack.metric('gcfsd_remote_snapshots_total')) >= 3, 'three layers committed as remote');
  // The layer blobs never came into containerd's content store.
  const content = await node.ctr('content', 'ls', '-q');
  const manifest = JSON.parse(
    await node.ctr('content', 'get', (await cri.imageStatus(image))!.repoDigests[0]!.split('@')[1]!),
  );
  for (const layer of manifest.layers as Array<{ digest: string }>)
    assert.equal(content.includes(layer.digest), false);
  const snapshots = await node.ctr('snapshots', '--snapshotter', 'gcfs', 'ls');
  assert.match(snapshots, /Committed/);

  const pod = await cri.runPodSandbox({ name: 'streamed', logDirectory: node.logDirectory });
  const first = await node.run(pod, 'first', image, APP_SCRIPT);
  assert.equal(first.exitCode, 0);
  assert.deepEqual(first.lines, APP_OUTPUT);
  const streamed = await stack.metric('gcfsd_backend_fetched_bytes_total');
  assert.ok(
    (await stack.metric('gcfsd_fuse_reads_total', 'source="remote"')) > 0,
    'reads served through FUSE',
  );
  assert.ok(streamed > 0 && streamed < 8 * MiB, `fetched ${streamed} bytes, not the big file`);
  const before = await node.imageLinks('test/app');
  assert.ok(
    before?.links.every((link) => link.startsWith('../../layers/')),
    'all layers streamed',
  );

  // The downloader arrives: every layer lands in the cache and the links switch.
  await stack.startDownloader();
  const after = await node.untilDownloaded('test/app');
  const second = await node.run(pod, 'second', image, APP_SCRIPT);
  assert.deepEqual(second.lines, APP_OUTPUT);
  assert.equal(await stack.metric('gcfsd_backend_fetched_bytes_total'), streamed, 'nothing more from cfsd');

  // Image removed from containerd: its GC removes our snapshots, then gcfsd's GC the layers.
  await cri.removeContainer(first.id);
  await cri.removeContainer(second.id);
  await cri.removePod(pod.id);
  await cri.removeImage(image);
  await eventually('gcfsd to remove the image and its layers', async () => {
    const gone =
      (await node.imageLinks('test/app')) === undefined && after.links.every((l) => !existsSync(l));
    return gone ? true : undefined;
  });
  const left = await node.ctr('snapshots', '--snapshotter', 'gcfs', 'ls');
  assert.equal(left.includes(first.id), false);
});

test('gcfsd restarted under a running pod, then containerd restarted: new containers still start', async (t) => {
  const node = await streamingNode(t, { 'test/app': APP_IMAGE }, { downloader: false });
  const { cri, stack, refs } = node;
  const image = refs['test/app']!;
  await cri.pullImage(image);
  const pod = await cri.runPodSandbox({ name: 'restarts', logDirectory: node.logDirectory });
  assert.deepEqual((await node.run(pod, 'before', image, APP_SCRIPT)).lines, APP_OUTPUT);

  await stack.restartGcfsd({ crash: true });
  assert.deepEqual((await node.run(pod, 'after-gcfsd', image, APP_SCRIPT)).lines, APP_OUTPUT);

  const listed = await node.ctr('snapshots', '--snapshotter', 'gcfs', 'ls');
  await node.containerd.restart();
  assert.equal(await node.ctr('snapshots', '--snapshotter', 'gcfs', 'ls'), listed);
  assert.deepEqual((await node.run(pod, 'after-containerd', image, APP_SCRIPT)).lines, APP_OUTPUT);
});

test('an image cfsd refuses (a sparse file) is pulled normally and runs; the fallback is logged, counted and reported', async (t) => {
  const temp = await tempDirFor(t, 'gcfs-sparse-');
  const tree = join(temp.path, 'tree');
  await mkdir(join(tree, 'data'), { recursive: true });
  await writeFile(join(tree, 'data/sparse'), 'sparse-head\n');
  await truncate(join(tree, 'data/sparse'), 4 * MiB);
  const tarFile = join(temp.path, 'sparse.tar');
  // GNU tar writes the sparse map as GNU.sparse.* PAX records: Go's tar reads them, we do not.
  await execFileAsync('tar', ['--sparse', '--format=pax', '-cf', tarFile, '-C', tree, 'data']);
  const sparseImage: ImageSpec = {
    config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
    layers: [{ entries: busyboxEntries() }, { tarFile }],
  };
  const node = await streamingNode(t, { 'test/sparse': sparseImage, 'test/app': APP_IMAGE });
  const { cri, stack, refs } = node;
  const image = refs['test/sparse']!;
  await cri.pullImage(image);
  const pod = await cri.runPodSandbox({ name: 'fallback', logDirectory: node.logDirectory });
  const run = await node.run(
    pod,
    'sparse',
    image,
    'wc -c /data/sparse; read -r head < /data/sparse; echo "$head"',
  );
  assert.deepEqual(run.lines, ['4194304 /data/sparse', 'sparse-head']);

  // Its busybox layer may stream (cfsd indexed it before it failed the sparse one): the sparse
  // layer is what containerd pulled, and the fallback is said once.
  assert.equal(await stack.metric('gcfsd_image_streaming_fallbacks_total', 'reason="ERR_NOT_STREAMABLE"'), 1);
  const { gcfsd } = await stack.logs();
  assert.match(gcfsd, /Image \S*test\/sparse\S* is not streamed, containerd pulls it normally/);
  assert.match(gcfsd, /Event Warning ImageStreaming: Image \S*test\/sparse/);
  assert.match(gcfsd, /Kubernetes events are not delivered/);

  // cfsd unreachable: the next image falls back too, for that reason.
  await stack.stopCfsd();
  const other = refs['test/app']!;
  await cri.pullImage(other);
  assert.deepEqual((await node.run(pod, 'app', other, APP_SCRIPT)).lines, APP_OUTPUT);
  assert.equal(await node.imageLinks('test/app'), undefined, 'not streamed');
  assert.equal(
    await stack.metric('gcfsd_image_streaming_fallbacks_total', 'reason="ERR_BACKEND_UNAVAILABLE"'),
    1,
  );
});

test('containerd with disable_snapshot_annotations = true: images are pulled normally and gcfsd says how to fix it', async (t) => {
  const node = await streamingNode(t, { 'test/app': APP_IMAGE }, { snapshotAnnotations: false });
  const { cri, stack, refs } = node;
  const image = refs['test/app']!;
  await cri.pullImage(image);
  const pod = await cri.runPodSandbox({ name: 'no-labels', logDirectory: node.logDirectory });
  assert.deepEqual((await node.run(pod, 'app', image, APP_SCRIPT)).lines, APP_OUTPUT);
  assert.equal(await stack.metric('gcfsd_remote_snapshots_total'), 0);
  // Reported once for the pulls of the pause image and the app, not per layer.
  assert.equal(await stack.metric('gcfsd_image_streaming_fallbacks_total', 'reason="MissingLabels"'), 1);
  assert.match((await stack.logs()).gcfsd, /set disable_snapshot_annotations = false/);
});
