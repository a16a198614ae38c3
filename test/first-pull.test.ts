// The first pull of an image cfsd has never seen (issue 12): the node no longer waits for
// cfsd to index it. Each layer is served from whichever comes first, cfsd's index or its
// local copy; a layer cfsd cannot index never reaches a container half-made; two nodes
// asking at once cause one indexing per layer. Real registry, cfsd, gcfsd, downloader,
// containerd through CRI.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import type { Digest } from '@gcfs/core';
import { AdminClient, adminSocketPath } from '@gcfs/gcfsd';
import { type BuildResult, buildImage, busyboxEntries, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import {
  asLowerLayer,
  diffTrees,
  gnuTarExtract,
  snapshotTree,
  startGcfsStack,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { eventually, streamingNode } from './streaming-stack.js';

const MiB = 1024 * 1024;
const BIG = 96 * MiB;

/** Busybox, a big file in a layer of its own (long to index), a small top layer. */
const FIRST_PULL_IMAGE: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    { entries: busyboxEntries() },
    {
      entries: [
        { type: 'dir', path: 'big', mode: 0o755 },
        { type: 'file', path: 'big/blob', mode: 0o644, content: { size: BIG, seed: 'first-pull' } },
        { type: 'symlink', path: 'big/link', target: 'blob' },
      ],
    },
    { entries: [{ type: 'file', path: 'message', mode: 0o644, content: 'first pull\n' }] },
  ],
};
const SCRIPT = 'cat /message; md5sum /big/blob | cut -d" " -f1';

async function expectedOutput(built: BuildResult, dir: string): Promise<string[]> {
  const extracted = join(dir, 'big-layer');
  await gnuTarExtract(
    join(built.layoutDir, 'blobs/sha256', built.layers[1]!.descriptor.digest.slice(7)),
    extracted,
    {
      compression: 'gzip',
    },
  );
  const md5 = createHash('md5')
    .update(await readFile(join(extracted, 'big/blob')))
    .digest('hex');
  return ['first pull', md5];
}

/** Every layer gcfsd serves for the image (images/<dir>/<i>) against GNU tar's extraction of its blob. */
async function assertLayersEqualGnuTar(
  built: BuildResult,
  links: { dir: string; links: string[] },
  dir: string,
): Promise<void> {
  assert.equal(links.links.length, built.layers.length);
  for (const [i, layer] of built.layers.entries()) {
    const reference = join(dir, `layer-${i}`);
    const blob = join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice(7));
    await gnuTarExtract(blob, reference, { compression: 'gzip' });
    const expected = asLowerLayer(await snapshotTree(reference));
    // GNU tar makes symlinks last, after it restored their directory's mtime: that mtime is its own.
    const withSymlinks = new Set(
      [...expected].filter(([, node]) => node.type === 'symlink').map(([path]) => dirname(path)),
    );
    const served = await snapshotTree(`${join(links.dir, String(i))}/`);
    const differences = diffTrees(expected, served).filter(
      (line) => !withSymlinks.has(line.split(': mtimeSec ')[0]!),
    );
    assert.deepEqual(differences, [], `layer ${i}`);
  }
}

/** The image as the node's registry has it, kept in a layout so the test can read its blobs. */
async function buildReference(dir: string): Promise<BuildResult> {
  return buildImage(FIRST_PULL_IMAGE, { layoutDir: join(dir, 'layout') });
}

test('a first pull through CRI of an image cfsd never saw streams, and every layer equals GNU tar', async (t) => {
  const temp = await tempDirFor(t, 'gcfs-first-pull-');
  const built = await buildReference(temp.path);
  const node = await streamingNode(t, { 'test/first': FIRST_PULL_IMAGE });
  const { cri, stack, refs } = node;
  const image = refs['test/first']!;
  await cri.pullImage(image);
  assert.ok((await stack.metric('gcfsd_remote_snapshots_total')) >= 3, 'every layer committed as remote');
  const content = await node.ctr('content', 'ls', '-q');
  for (const layer of built.layers) assert.equal(content.includes(layer.descriptor.digest), false);

  const pod = await cri.runPodSandbox({ name: 'first', logDirectory: node.logDirectory });
  const run = await node.run(pod, 'first', image, SCRIPT);
  assert.deepEqual(run.lines, await expectedOutput(built, temp.path));
  const links = await node.imageLinks('test/first');
  assert.ok(links !== undefined, 'streamed');
  await assertLayersEqualGnuTar(built, links, temp.path);
  // The layers cfsd did not have indexed at the pull were downloaded at once, not after a pause.
  const { gcfsd } = await stack.logs();
  assert.match(gcfsd, /Async layer download started/);
});

test('cfsd killed (SIGKILL) while it indexes a first pull: the layers come from their local copies, nothing half-indexed is visible', async (t) => {
  const temp = await tempDirFor(t, 'gcfs-first-pull-kill-');
  const built = await buildReference(temp.path);
  const node = await streamingNode(t, { 'test/first': FIRST_PULL_IMAGE });
  const { cri, stack, refs } = node;
  const image = refs['test/first']!;
  const big = built.layers[1]!.descriptor.digest;
  const pulled = cri.pullImage(image);
  // gcfsd says so as soon as cfsd answered AuthImage: cfsd is indexing the 96 MiB layer then.
  await eventually('gcfsd to register the image', async () =>
    /Streaming image \S*test\/first/.test((await stack.logs()).gcfsd) ? true : undefined,
  );
  await stack.stopCfsd({ crash: true });
  await pulled;
  assert.doesNotMatch(
    (await stack.logs()).cfsd,
    new RegExp(`Layer indexed.*${big}`),
    'killed before it indexed',
  );

  const pod = await cri.runPodSandbox({ name: 'kill', logDirectory: node.logDirectory });
  const run = await node.run(pod, 'kill', image, SCRIPT);
  assert.deepEqual(run.lines, await expectedOutput(built, temp.path));
  const links = await node.imageLinks('test/first');
  assert.ok(links !== undefined);
  assert.ok(links.links[1]!.startsWith(stack.cacheDir), `the big layer is local: ${links.links[1]}`);
  await assertLayersEqualGnuTar(built, links, temp.path);
  // cfsd's store: the layer it was writing is nowhere a reader could find it.
  assert.equal(existsSync(join(stack.cfsdStore!, 'layers/sha256', big.slice(7))), false);
  // cfsd back: it clears what the killed process left and serves the image again.
  await stack.startCfsd();
  assert.ok((await cri.pullImage(image)).startsWith('sha256:'));
});

test('a layer whose gzip stream is corrupt at its end: the pull fails with a clear error and no container reads it', async (t) => {
  const temp = await tempDirFor(t, 'gcfs-first-pull-corrupt-');
  const built = await buildReference(temp.path);
  const node = await streamingNode(t, {});
  const { cri, stack } = node;
  // The big layer's blob with its gzip trailer (CRC-32 of the data) damaged; the manifest names
  // the damaged blob by its own digest, so only decompression can tell.
  const layer = built.layers[1]!;
  const blob = Buffer.from(
    await readFile(join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice(7))),
  );
  blob[blob.length - 8] = (blob[blob.length - 8]! + 1) & 0xff;
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;
  const manifest = JSON.parse(
    (await readFile(join(built.layoutDir, 'blobs/sha256', built.manifestDigest.slice(7)))).toString('utf8'),
  );
  manifest.layers[1].digest = digest;
  const pusher = new RegistryClient({ insecureHosts: [node.registry.host] });
  t.after(() => pusher.close());
  const repo = { registry: node.registry.host, repository: 'test/corrupt' };
  await pushImage(pusher, built, { ...repo, tag: 'intact' });
  await pusher.pushBlob({ ...repo, digest }, { ...layer.descriptor, digest }, blob);
  await pusher.pushManifest(
    { ...repo, tag: 'v1' },
    built.manifests[0]!.descriptor.mediaType,
    Buffer.from(JSON.stringify(manifest)),
  );
  const image = `${node.registry.host}/test/corrupt:v1`;

  await assert.rejects(cri.pullImage(image), (err: Error) => {
    assert.match(err.message, /checksum|gzip|invalid/i);
    return true;
  });
  const { gcfsd, cfsd } = await stack.logs();
  assert.match(cfsd, new RegExp(`Layer indexing failed.*${digest}`));
  assert.match(gcfsd, /Image \S*test\/corrupt\S* is not streamed, containerd pulls it normally/);
  assert.equal(existsSync(join(stack.cfsdStore!, 'layers/sha256', digest.slice(7))), false);
  assert.equal(await cri.imageStatus(image), undefined, 'no image to start a container from');
});

test('two nodes asking for the same never-seen image at once: cfsd indexes each layer once', async (t) => {
  const temp = await tempDirFor(t, 'gcfs-first-pull-two-');
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const pusher = new RegistryClient({ insecureHosts: [registry.host] });
  t.after(() => pusher.close());
  const built = await buildReference(temp.path);
  await pushImage(pusher, built, { registry: registry.host, repository: 'test/first', tag: 'v1' });
  const first = await startGcfsStack({ insecureRegistry: '127.0.0.1' });
  t.after(() => first.stop());
  const second = await startGcfsStack({ insecureRegistry: '127.0.0.1', cfsdAddress: first.cfsdAddress });
  t.after(() => second.stop());
  const clients = [first, second].map((stack) => new AdminClient(adminSocketPath(stack.mountPoint)));
  t.after(() => {
    for (const client of clients) client.close();
  });
  const image = `${registry.host}/test/first@${built.manifestDigest}`;
  const registered = await Promise.all(clients.map((client) => client.register(image)));
  for (const one of registered) assert.equal(one.layers.length, built.layers.length);
  const { cfsd } = await first.logs();
  for (const layer of built.layers) {
    const times = cfsd
      .split('\n')
      .filter((line) => line.includes('Layer indexed') && line.includes(layer.descriptor.digest));
    assert.equal(times.length, 1, `layer ${layer.descriptor.digest} indexed ${times.length} times`);
  }
});

test('an image under --min_streamed_image_size_mb is pulled normally without asking cfsd; a bigger one streams', async (t) => {
  const tiny: ImageSpec = {
    config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
    layers: [
      { entries: busyboxEntries() },
      { entries: [{ type: 'file', path: 'message', mode: 0o644, content: 'tiny\n' }] },
    ],
  };
  // Random bytes do not compress: over the 2 MiB cutoff as a gzip layer too. Only pulled, so
  // no layer in common with the tiny image (whose snapshots would then exist already).
  const big: ImageSpec = {
    config: tiny.config,
    layers: [
      { entries: [{ type: 'file', path: 'blob', mode: 0o644, content: { size: 3 * MiB, seed: 'cutoff' } }] },
    ],
  };
  const node = await streamingNode(t, { 'test/tiny': tiny, 'test/big': big }, { minStreamedImageMb: 2 });
  const { cri, stack, refs } = node;
  await cri.pullImage(refs['test/big']!);
  assert.ok(await node.imageLinks('test/big'), 'the image over the cutoff streams');
  const remote = await stack.metric('gcfsd_remote_snapshots_total');

  // With cfsd gone, the size can only have come from the registry.
  await stack.stopCfsd();
  await cri.pullImage(refs['test/tiny']!);
  const tooSmall = 'reason="ERR_IMAGE_TOO_SMALL"';
  assert.equal(await stack.metric('gcfsd_image_streaming_fallbacks_total', tooSmall), 1);
  assert.equal(await stack.metric('gcfsd_image_streaming_fallbacks_total'), 1, 'no other fallback');
  assert.match((await stack.logs()).gcfsd, /test\/tiny:v1 is not streamed.*reason=ERR_IMAGE_TOO_SMALL/);
  assert.equal(
    await stack.metric('gcfsd_remote_snapshots_total'),
    remote,
    'every snapshot unpacked by containerd',
  );
  assert.equal(await node.imageLinks('test/tiny'), undefined, 'not streamed');

  // The container runs with cfsd still away: nothing of it is streamed.
  const pod = await cri.runPodSandbox({ name: 'tiny', logDirectory: node.logDirectory });
  const run = await node.run(pod, 'tiny', refs['test/tiny']!, 'cat /message');
  assert.deepEqual(run.lines, ['tiny']);
});
