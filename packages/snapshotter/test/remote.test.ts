// Remote snapshots against a streaming side of our own making (the real one, gcfsd over
// FUSE, is exercised through containerd's CRI in test/): the protocol containerd's unpacker
// expects, the fallback to normal snapshots, lower dirs, release and persistence.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import {
  CRI_LABELS,
  type FallbackEvent,
  FallbackMemory,
  layerUnavailable,
  REMOTE_LABEL,
  type RemoteLayerRef,
  type RemoteLayers,
  SNAPSHOT_REF_LABEL,
  Snapshotter,
  type SnapshotterOptions,
} from '../src/index.js';

const MANIFEST = `sha256:${'a'.repeat(64)}`;
const LAYERS = ['1', '2', '3'].map((c) => `sha256:${c.repeat(64)}`);

/** A streaming side that serves layers from plain directories, and records what it was asked. */
class DirectoryLayers implements RemoteLayers {
  prepared: RemoteLayerRef[] = [];
  released: RemoteLayerRef[] = [];
  refuse: GcfsError | undefined;
  unavailable = false;
  constructor(readonly dir: string) {}
  async prepare(layer: RemoteLayerRef): Promise<void> {
    this.prepared.push(layer);
    if (this.refuse) throw this.refuse;
  }
  async lowerDir(layer: RemoteLayerRef): Promise<string> {
    if (this.unavailable) throw layerUnavailable(layer);
    return join(this.dir, String(layer.index));
  }
  async release(layer: RemoteLayerRef): Promise<void> {
    this.released.push(layer);
  }
}

/** The labels containerd's unpacker passes for layer `index` of an image pulled through CRI. */
function unpackLabels(index: number, imageRef = 'registry.test/app:1'): Record<string, string> {
  return {
    [SNAPSHOT_REF_LABEL]: `chain-${imageRef}-${index}`,
    [CRI_LABELS.imageRef]: imageRef,
    [CRI_LABELS.layerDigest]: LAYERS[index]!,
    [CRI_LABELS.imageLayers]: LAYERS.slice(index).join(','),
    [CRI_LABELS.manifestDigest]: MANIFEST,
  };
}

async function open(t: test.TestContext, options: Omit<SnapshotterOptions, 'remote'> = {}) {
  const temp = await tempDirFor(t, 'gcfs-remote-');
  const remote = new DirectoryLayers(join(temp.path, 'layers'));
  const root = join(temp.path, 'root');
  const snapshotter = await Snapshotter.open(root, { remote, ...options });
  t.after(() => snapshotter.close());
  const fallbacks: FallbackEvent[] = [];
  snapshotter.on('fallback', (event) => fallbacks.push(event));
  return { snapshotter, remote, root, fallbacks };
}

/** What containerd's unpacker does per layer: Prepare; on ALREADY_EXISTS the target is there. */
async function unpack(snapshotter: Snapshotter, count: number, imageRef?: string): Promise<string[]> {
  const targets: string[] = [];
  let parent = '';
  for (let index = 0; index < count; index++) {
    const labels = unpackLabels(index, imageRef);
    const target = labels[SNAPSHOT_REF_LABEL]!;
    await assert.rejects(snapshotter.prepare(`extract-${index} ${target}`, parent, labels), {
      code: ErrorCode.AlreadyExists,
    });
    targets.push(target);
    parent = target;
  }
  return targets;
}

test('an unpack with CRI labels commits remote snapshots that later mounts stack as lower dirs', async (t) => {
  const { snapshotter, remote } = await open(t);
  const targets = await unpack(snapshotter, 3);
  assert.deepEqual(
    remote.prepared.map((layer) => [layer.index, layer.digest]),
    LAYERS.map((digest, index) => [index, digest]),
  );
  const info = snapshotter.stat(targets[2]!);
  assert.equal(info.kind, 'committed');
  assert.equal(info.parent, targets[1]);
  assert.equal(info.labels[SNAPSHOT_REF_LABEL], targets[2]);
  assert.equal(info.labels[REMOTE_LABEL], 'registry.test/app:1');
  // containerd finds the committed snapshot by its label and parent.
  const found = snapshotter.list([`labels."${SNAPSHOT_REF_LABEL}"==${targets[1]},parent==${targets[0]}`]);
  assert.deepEqual(
    found.map((s) => s.name),
    [targets[1]],
  );
  // No unpack key is left behind, and the layers take no disk.
  assert.equal(snapshotter.list(['kind==Active']).length, 0);
  assert.deepEqual(await snapshotter.usage(targets[0]!), { size: 0, inodes: 0 });

  const [container] = await snapshotter.prepare('container', targets[2]!);
  assert.equal(container?.type, 'overlay');
  const lower = container?.options.find((option) => option.startsWith('lowerdir='));
  assert.equal(lower, `lowerdir=${[2, 1, 0].map((i) => join(remote.dir, String(i))).join(':')}`);
  const [view] = await snapshotter.view('view', targets[0]!);
  assert.deepEqual(view, { type: 'bind', source: join(remote.dir, '0'), options: ['ro', 'rbind'] });
});

test('a remote layer that cannot be served makes Mounts fail with LayerUnavailable', async (t) => {
  const { snapshotter, remote } = await open(t);
  const targets = await unpack(snapshotter, 2);
  await snapshotter.prepare('container', targets[1]!);
  remote.unavailable = true;
  await assert.rejects(snapshotter.mounts('container'), { code: ErrorCode.LayerUnavailable });
  remote.unavailable = false;
  assert.equal((await snapshotter.mounts('container'))[0]?.type, 'overlay');
});

test('an image the streaming side refuses falls back to normal snapshots, reported once', async (t) => {
  const { snapshotter, remote, fallbacks } = await open(t);
  remote.refuse = new GcfsError(ErrorCode.NotStreamable, 'cfsd says no');
  let parent = '';
  for (let index = 0; index < 3; index++) {
    const labels = unpackLabels(index);
    const key = `extract-${index}`;
    const mounts = await snapshotter.prepare(key, parent, labels);
    assert.equal(mounts[0]?.type, index === 0 ? 'bind' : 'overlay');
    await snapshotter.commit(labels[SNAPSHOT_REF_LABEL]!, key, labels);
    parent = labels[SNAPSHOT_REF_LABEL]!;
  }
  // Asked once: the other layers of the same image fall back without asking again.
  assert.equal(remote.prepared.length, 1);
  assert.equal(fallbacks.length, 1);
  assert.equal(fallbacks[0]?.reason, ErrorCode.NotStreamable);
  assert.equal(fallbacks[0]?.imageRef, 'registry.test/app:1');
  assert.match(fallbacks[0]?.message ?? '', /cfsd says no/);
  assert.equal(snapshotter.list([`labels."${REMOTE_LABEL}"`]).length, 0);
});

/** Unpack `count` layers of `imageRef` as normal snapshots (containerd pulls them), as after a fallback. */
async function unpackNormally(snapshotter: Snapshotter, count: number, imageRef?: string): Promise<void> {
  let parent = '';
  for (let index = 0; index < count; index++) {
    const labels = unpackLabels(index, imageRef);
    const key = `extract-${imageRef}-${index}`;
    await snapshotter.prepare(key, parent, labels);
    await snapshotter.commit(labels[SNAPSHOT_REF_LABEL]!, key, labels);
    parent = labels[SNAPSHOT_REF_LABEL]!;
  }
}

test('without a content service (ERR_NO_BACKEND) an image is reported once however long its pull', async (t) => {
  // No memory at all for other reasons: each layer is asked about again.
  const { snapshotter, remote, fallbacks } = await open(t, {
    fallbackMemoryMs: 0,
    lastingFallbacks: new Set([ErrorCode.NoBackend]),
  });
  remote.refuse = new GcfsError(ErrorCode.NotStreamable, 'cfsd says no');
  await unpackNormally(snapshotter, 2, 'registry.test/refused:1');
  assert.equal(remote.prepared.length, 2, 'a passing reason is asked about again once forgotten');

  remote.prepared = [];
  fallbacks.length = 0;
  remote.refuse = new GcfsError(ErrorCode.NoBackend, 'no --addr');
  await unpackNormally(snapshotter, 3, 'registry.test/app:1');
  assert.equal(remote.prepared.length, 1);
  assert.deepEqual(
    fallbacks.map((event) => [event.reason, event.imageRef]),
    [[ErrorCode.NoBackend, 'registry.test/app:1']],
  );
});

test('the fallback memory forgets its oldest images beyond its bound, lasting ones too', () => {
  const memory = new FallbackMemory(60_000, { maxKeys: 2, lasting: new Set([ErrorCode.NoBackend]) });
  memory.remember('a', ErrorCode.NoBackend);
  memory.remember('b', ErrorCode.NotStreamable);
  memory.remember('c', ErrorCode.NoBackend);
  assert.deepEqual(
    ['a', 'b', 'c'].map((key) => memory.has(key)),
    [false, true, true],
  );
  // Remembered again: the newest, so the next one pushes out another.
  memory.remember('b', ErrorCode.NotStreamable);
  memory.remember('d', ErrorCode.NotStreamable);
  assert.deepEqual(
    ['b', 'c', 'd'].map((key) => memory.has(key)),
    [true, false, true],
  );
});

test('missing CRI labels (disable_snapshot_annotations = true) fall back and say how to fix it', async (t) => {
  const { snapshotter, remote, fallbacks } = await open(t);
  for (const index of [0, 1]) {
    const mounts = await snapshotter.prepare(`extract-${index}`, '', {
      [SNAPSHOT_REF_LABEL]: `chain-${index}`,
    });
    assert.equal(mounts[0]?.type, 'bind');
  }
  assert.equal(remote.prepared.length, 0);
  assert.equal(fallbacks.length, 1);
  assert.equal(fallbacks[0]?.reason, 'MissingLabels');
  assert.match(fallbacks[0]?.message ?? '', /disable_snapshot_annotations = false/);
});

test('removing the last snapshot of an image releases it; records survive a reopen', async (t) => {
  const { snapshotter, remote, root } = await open(t);
  const first = await unpack(snapshotter, 2);
  const second = await unpack(snapshotter, 1, 'registry.test/other:2');
  assert.deepEqual(
    snapshotter.remoteImages().map((layer) => layer.imageRef),
    ['registry.test/app:1', 'registry.test/other:2'],
  );
  await assert.rejects(snapshotter.remove(first[0]!), { code: ErrorCode.FailedPrecondition });
  await snapshotter.remove(first[1]!);
  assert.equal(remote.released.length, 0, 'the image still has a snapshot');
  await snapshotter.remove(first[0]!);
  assert.deepEqual(
    remote.released.map((layer) => layer.imageRef),
    ['registry.test/app:1'],
  );
  await snapshotter.close();

  const reopened = await Snapshotter.open(root, { remote });
  t.after(() => reopened.close());
  assert.equal(reopened.stat(second[0]!).remote?.imageRef, 'registry.test/other:2');
  assert.deepEqual(
    reopened.remoteImages().map((layer) => layer.imageRef),
    ['registry.test/other:2'],
  );
});
