import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '@gcfs/core';
import { makeTempDir, tempDirFor } from '@gcfs/testkit';
import { type Mount, Snapshotter } from '../src/index.js';
import { catFrom, mountAll, unmount } from './mounts.js';

interface Fixture {
  snapshotter: Snapshotter;
  /** A fresh mount point, unmounted when the test ends. */
  mountPoint(name: string): Promise<string>;
}

/** A snapshotter in a temp root; at the end: unmount, close, remove the root, in that order. */
async function openIn(t: test.TestContext): Promise<Fixture> {
  const temp = await makeTempDir('gcfs-snap-');
  const targets: string[] = [];
  let snapshotter: Snapshotter | undefined;
  t.after(async () => {
    for (const target of targets) await unmount(target);
    await snapshotter?.close();
    await temp.cleanup();
  });
  snapshotter = await Snapshotter.open(join(temp.path, 'root'));
  return {
    snapshotter,
    async mountPoint(name) {
      const target = join(temp.path, `mnt-${name}`);
      targets.push(target);
      await mkdir(target);
      return target;
    },
  };
}

/** Write into an active snapshot through its mounts, then commit it as `name`. */
async function layer(
  { snapshotter, mountPoint }: Fixture,
  name: string,
  parent: string,
  change: (dir: string) => Promise<void>,
): Promise<void> {
  const key = `default/1/extract-${name}`;
  const mounts = await snapshotter.prepare(key, parent);
  const target = await mountPoint(name);
  await mountAll(mounts, target);
  await change(target);
  await unmount(target);
  await snapshotter.commit(name, key);
}

function option(mount: Mount | undefined, name: string): string | undefined {
  return mount?.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
}

async function threeLayers(fixture: Fixture): Promise<void> {
  await layer(fixture, 'l1', '', async (dir) => {
    await writeFile(join(dir, 'a'), 'a from l1');
    await writeFile(join(dir, 'gone'), 'removed by l2');
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'old'), 'replaced dir content');
  });
  await layer(fixture, 'l2', 'l1', async (dir) => {
    await unlink(join(dir, 'gone'));
    await writeFile(join(dir, 'b'), 'b from l2');
    await rm(join(dir, 'd'), { recursive: true });
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'new'), 'new dir content');
  });
  await layer(fixture, 'l3', 'l2', async (dir) => {
    await writeFile(join(dir, 'a'), 'a from l3');
  });
}

test('a chain of three layers mounts as overlay and reads back merged from another process', async (t) => {
  const fixture = await openIn(t);
  const { snapshotter } = fixture;
  await threeLayers(fixture);

  const mounts = await snapshotter.prepare('default/2/container', 'l3', { app: 'x' });
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0]?.type, 'overlay');
  const ids = ['l3', 'l2', 'l1'].map((name) =>
    join(snapshotter.root, 'snapshots', String(idOf(snapshotter, name)), 'fs'),
  );
  assert.equal(option(mounts[0], 'lowerdir'), ids.join(':'));
  const own = join(snapshotter.root, 'snapshots', String(idOf(snapshotter, 'default/2/container')));
  assert.equal(option(mounts[0], 'upperdir'), join(own, 'fs'));
  assert.equal(option(mounts[0], 'workdir'), join(own, 'work'));

  const target = await fixture.mountPoint('container');
  await mountAll(mounts, target);
  assert.equal(await catFrom(join(target, 'a')), 'a from l3');
  assert.equal(await catFrom(join(target, 'b')), 'b from l2');
  assert.deepEqual((await readdir(join(target, 'd'))).sort(), ['new']);
  await assert.rejects(stat(join(target, 'gone')), { code: 'ENOENT' });
  await writeFile(join(target, 'c'), 'written by the container');
  await unmount(target);
  assert.equal(await catFrom(join(own, 'fs', 'c')), 'written by the container');
  assert.deepEqual(await snapshotter.mounts('default/2/container'), mounts);
});

function idOf(snapshotter: Snapshotter, name: string): number {
  return snapshotter.stat(name).id;
}

test('mounts: bind for a base, read-only bind of a single parent for a view, overlay lowerdir for more', async (t) => {
  const { snapshotter, mountPoint } = await openIn(t);
  const base = await snapshotter.prepare('k1', '');
  const baseDir = join(snapshotter.root, 'snapshots', String(idOf(snapshotter, 'k1')), 'fs');
  assert.deepEqual(base, [{ type: 'bind', source: baseDir, options: ['rw', 'rbind'] }]);
  await writeFile(join(baseDir, 'f'), 'base');
  await snapshotter.commit('c1', 'k1');
  assert.equal(snapshotter.stat('c1').id, idOf(snapshotter, 'c1'));

  const view = await snapshotter.view('v1', 'c1');
  assert.deepEqual(view, [{ type: 'bind', source: baseDir, options: ['ro', 'rbind'] }]);
  const target = await mountPoint('view');
  await mountAll(view, target);
  assert.equal(await catFrom(join(target, 'f')), 'base');
  await assert.rejects(writeFile(join(target, 'g'), 'no'), { code: 'EROFS' });
  await unmount(target);

  const emptyView = await snapshotter.view('v0', '');
  assert.deepEqual(emptyView[0]?.options, ['ro', 'rbind']);

  await snapshotter.prepare('k2', 'c1');
  await snapshotter.commit('c2', 'k2');
  const deep = await snapshotter.view('v2', 'c2');
  assert.equal(deep[0]?.type, 'overlay');
  assert.deepEqual(deep[0]?.options.length, 1);
  assert.equal(option(deep[0], 'lowerdir')?.split(':').length, 2);
  assert.equal(snapshotter.stat('v2').kind, 'view');
});

test('errors as containerd expects: ALREADY_EXISTS, NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT', async (t) => {
  const { snapshotter } = await openIn(t);
  await snapshotter.prepare('k1', '');
  await assert.rejects(snapshotter.prepare('k1', ''), { code: ErrorCode.AlreadyExists });
  await assert.rejects(snapshotter.prepare('k2', 'missing'), { code: ErrorCode.NotFound });
  await assert.rejects(snapshotter.prepare('k3', 'k1'), { code: ErrorCode.InvalidArgument });
  await assert.rejects(snapshotter.prepare('', ''), { code: ErrorCode.InvalidArgument });
  assert.throws(() => snapshotter.stat('nope'), { code: ErrorCode.NotFound });
  await assert.rejects(snapshotter.commit('c1', 'nope'), { code: ErrorCode.NotFound });
  await snapshotter.commit('c1', 'k1');
  assert.throws(() => snapshotter.stat('k1'), { code: ErrorCode.NotFound });
  await assert.rejects(snapshotter.mounts('c1'), { code: ErrorCode.FailedPrecondition });
  await snapshotter.prepare('k4', 'c1');
  await assert.rejects(snapshotter.commit('c1', 'k4'), { code: ErrorCode.AlreadyExists });
  await snapshotter.view('v1', 'c1');
  await assert.rejects(snapshotter.commit('c2', 'v1'), { code: ErrorCode.FailedPrecondition });
  await assert.rejects(snapshotter.remove('c1'), { code: ErrorCode.FailedPrecondition });
  await assert.rejects(snapshotter.remove('nope'), { code: ErrorCode.NotFound });
  // Failed creations leave no directory behind.
  assert.equal((await readdir(join(snapshotter.root, 'snapshots'))).length, 3);
});

test('remove: children first, then the parent; directories go with the records', async (t) => {
  const { snapshotter } = await openIn(t);
  await snapshotter.prepare('k1', '');
  await snapshotter.commit('c1', 'k1');
  await snapshotter.prepare('k2', 'c1');
  const childDir = join(snapshotter.root, 'snapshots', String(idOf(snapshotter, 'k2')));
  await snapshotter.remove('k2');
  await assert.rejects(stat(childDir), { code: 'ENOENT' });
  await snapshotter.remove('c1');
  assert.deepEqual(snapshotter.list(), []);
  assert.deepEqual(await readdir(join(snapshotter.root, 'snapshots')), []);
});

test('list filters: labels, parent, kind, name; comma is AND, several filters are OR', async (t) => {
  const { snapshotter } = await openIn(t);
  await snapshotter.prepare('k1', '', { 'containerd.io/snapshot.ref': 'sha256:1' });
  await snapshotter.commit('c1', 'k1', { 'containerd.io/snapshot.ref': 'sha256:1', tier: 'base' });
  await snapshotter.prepare('k2', 'c1', { tier: 'app' });
  await snapshotter.view('v1', 'c1');
  const names = (...filters: string[]) =>
    snapshotter
      .list(filters)
      .map((info) => info.name)
      .sort();

  assert.deepEqual(names(), ['c1', 'k2', 'v1']);
  assert.deepEqual(names('labels."containerd.io/snapshot.ref"==sha256:1'), ['c1']);
  assert.deepEqual(names('labels."containerd.io/snapshot.ref"'), ['c1']);
  assert.deepEqual(names('parent==c1'), ['k2', 'v1']);
  assert.deepEqual(names('parent==c1,kind==Active'), ['k2']);
  assert.deepEqual(names('kind==Committed', 'kind==View'), ['c1', 'v1']);
  assert.deepEqual(names('name=="k2"'), ['k2']);
  assert.deepEqual(names('labels.tier!=base'), ['k2', 'v1']);
  assert.deepEqual(names('name~=^[kv]'), ['k2', 'v1']);
  assert.throws(() => snapshotter.list(['labels."unterminated']), { code: ErrorCode.InvalidArgument });
});

test('commit keeps the directory, replaces the labels; update sets all labels or single keys', async (t) => {
  const { snapshotter } = await openIn(t);
  await snapshotter.prepare('k1', '', { kept: 'no' });
  const id = idOf(snapshotter, 'k1');
  await snapshotter.commit('c1', 'k1', { a: '1', b: '2' });
  const committed = snapshotter.stat('c1');
  assert.equal(committed.id, id);
  assert.equal(committed.kind, 'committed');
  assert.deepEqual(committed.labels, { a: '1', b: '2' });

  const one = await snapshotter.update('c1', { b: '3', c: '4' }, ['labels.b', 'labels.a']);
  assert.deepEqual(one.labels, { b: '3' });
  assert.ok(one.updatedAt >= committed.updatedAt);
  const all = await snapshotter.update('c1', { z: '9' });
  assert.deepEqual(all.labels, { z: '9' });
  assert.deepEqual(snapshotter.stat('c1').labels, { z: '9' });
  await assert.rejects(snapshotter.update('c1', {}, ['parent']), { code: ErrorCode.InvalidArgument });
  await assert.rejects(snapshotter.update('nope', {}), { code: ErrorCode.NotFound });
});

test('usage counts the blocks and inodes of the snapshot’s own fs dir', async (t) => {
  const { snapshotter } = await openIn(t);
  const [mount] = await snapshotter.prepare('k1', '');
  const empty = await snapshotter.usage('k1');
  assert.equal(empty.inodes, 1);
  await writeFile(join(mount!.source, 'big'), Buffer.alloc(1 << 20, 1));
  await mkdir(join(mount!.source, 'sub'));
  await writeFile(join(mount!.source, 'sub', 'small'), 'x');
  const full = await snapshotter.usage('k1');
  assert.equal(full.inodes, 4);
  assert.ok(full.size >= (1 << 20) + empty.size, `size ${full.size}`);
  await assert.rejects(snapshotter.usage('nope'), { code: ErrorCode.NotFound });
});

test('restart: records and directories survive; directories without a record are removed', async (t) => {
  const root = (await tempDirFor(t, 'gcfs-snap-')).path;
  const first = await Snapshotter.open(root);
  await first.prepare('k1', '', { l: 'v' });
  await first.commit('c1', 'k1');
  await first.prepare('k2', 'c1');
  await first.close();
  // What a crash between mkdir and the metadata commit leaves.
  await mkdir(join(root, 'snapshots', '99', 'fs'), { recursive: true });

  const second = await Snapshotter.open(root);
  t.after(() => second.close());
  assert.deepEqual(
    (await readdir(join(root, 'snapshots'))).sort(),
    [String(second.stat('c1').id), String(second.stat('k2').id)].sort(),
  );
  assert.equal(second.stat('k2').parent, 'c1');
  // New ids never reuse a recorded one.
  await second.prepare('k3', 'c1');
  assert.equal(new Set(second.list().map((info) => info.id)).size, 3);
  await mkdir(join(root, 'snapshots', 'stray'));
  await second.cleanup();
  assert.equal((await readdir(join(root, 'snapshots'))).length, 3);
});

test('concurrent prepares of one key: exactly one wins, the losers leave no directory', async (t) => {
  const { snapshotter } = await openIn(t);
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => snapshotter.prepare('k', '')));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) {
    if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, ErrorCode.AlreadyExists);
  }
  assert.deepEqual(await readdir(join(snapshotter.root, 'snapshots')), [String(idOf(snapshotter, 'k'))]);
});
