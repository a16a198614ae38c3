import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { snapshots as pb } from '@gcfs/proto';
import { makeTempDir } from '@gcfs/testkit';
import { credentials, makeClientConstructor, status } from '@grpc/grpc-js';
import { Snapshotter, serveSnapshots } from '../src/index.js';

const Client = makeClientConstructor(pb.SnapshotsService, 'containerd.services.snapshots.v1.Snapshots');

async function serve(t: test.TestContext): Promise<pb.SnapshotsClient> {
  const temp = await makeTempDir('gcfs-snap-svc-');
  let snapshotter: Snapshotter | undefined;
  let server: { stop(): Promise<void> } | undefined;
  let client: pb.SnapshotsClient | undefined;
  t.after(async () => {
    client?.close();
    await server?.stop();
    await snapshotter?.close();
    await temp.cleanup();
  });
  snapshotter = await Snapshotter.open(join(temp.path, 'root'));
  server = await serveSnapshots(snapshotter, join(temp.path, 'run', 'snapshots.sock'));
  client = new Client(
    `unix:${join(temp.path, 'run', 'snapshots.sock')}`,
    credentials.createInsecure(),
  ) as never;
  return client!;
}

function call<Req, Res>(
  client: pb.SnapshotsClient,
  method: keyof pb.SnapshotsClient,
  req: Req,
): Promise<Res> {
  const fn = client[method] as (req: Req, cb: (err: Error | null, res: Res) => void) => void;
  return promisify(fn).call(client, req) as Promise<Res>;
}

function listAll(client: pb.SnapshotsClient, filters: string[]): Promise<pb.Info[]> {
  return new Promise((resolve, reject) => {
    const infos: pb.Info[] = [];
    const stream = client.list({ snapshotter: 'gcfs', filters });
    stream.on('data', (res: pb.ListSnapshotsResponse) => infos.push(...res.info));
    stream.on('error', reject);
    stream.on('end', () => resolve(infos));
  });
}

test('the gRPC service: every RPC on the wire, errors as the gRPC codes containerd maps', async (t) => {
  const client = await serve(t);
  const prepared = await call<pb.PrepareSnapshotRequest, pb.PrepareSnapshotResponse>(client, 'prepare', {
    snapshotter: 'gcfs',
    key: 'ns/1/extract-1 sha256:aaa',
    parent: '',
    labels: { 'containerd.io/snapshot.ref': 'sha256:aaa' },
  });
  assert.equal(prepared.mounts[0]?.type, 'bind');
  assert.deepEqual(prepared.mounts[0]?.options, ['rw', 'rbind']);
  await assert.rejects(
    call(client, 'prepare', {
      snapshotter: 'gcfs',
      key: 'ns/1/extract-1 sha256:aaa',
      parent: '',
      labels: {},
    }),
    { code: status.ALREADY_EXISTS },
  );
  await call(client, 'commit', {
    snapshotter: 'gcfs',
    name: 'ns/2/sha256:aaa',
    key: 'ns/1/extract-1 sha256:aaa',
    labels: { 'containerd.io/snapshot.ref': 'sha256:aaa' },
  });
  const stat = await call<pb.StatSnapshotRequest, pb.StatSnapshotResponse>(client, 'stat', {
    snapshotter: 'gcfs',
    key: 'ns/2/sha256:aaa',
  });
  assert.equal(stat.info?.kind, pb.Kind.COMMITTED);
  assert.ok((stat.info?.createdAt?.seconds ?? 0) > 1_700_000_000);

  const view = await call<pb.ViewSnapshotRequest, pb.ViewSnapshotResponse>(client, 'view', {
    snapshotter: 'gcfs',
    key: 'ns/3/view',
    parent: 'ns/2/sha256:aaa',
    labels: {},
  });
  assert.deepEqual(view.mounts[0]?.options, ['ro', 'rbind']);
  const mounts = await call<pb.MountsRequest, pb.MountsResponse>(client, 'mounts', {
    snapshotter: 'gcfs',
    key: 'ns/3/view',
  });
  assert.deepEqual(mounts.mounts, view.mounts);

  const updated = await call<pb.UpdateSnapshotRequest, pb.UpdateSnapshotResponse>(client, 'update', {
    snapshotter: 'gcfs',
    info: {
      name: 'ns/3/view',
      parent: '',
      kind: pb.Kind.UNKNOWN,
      createdAt: undefined,
      updatedAt: undefined,
      labels: { x: 'y' },
    },
    updateMask: ['labels.x'],
  });
  assert.deepEqual(updated.info?.labels, { x: 'y' });

  const listed = await listAll(client, ['labels."containerd.io/snapshot.ref"==sha256:aaa', 'labels.x==y']);
  assert.deepEqual(listed.map((info) => info.name).sort(), ['ns/2/sha256:aaa', 'ns/3/view']);
  await assert.rejects(listAll(client, ['labels."oops']), { code: status.INVALID_ARGUMENT });

  const usage = await call<pb.UsageRequest, pb.UsageResponse>(client, 'usage', {
    snapshotter: 'gcfs',
    key: 'ns/2/sha256:aaa',
  });
  assert.equal(usage.inodes, 1);
  await assert.rejects(call(client, 'remove', { snapshotter: 'gcfs', key: 'ns/2/sha256:aaa' }), {
    code: status.FAILED_PRECONDITION,
  });
  await assert.rejects(call(client, 'stat', { snapshotter: 'gcfs', key: 'nope' }), {
    code: status.NOT_FOUND,
  });
  await assert.rejects(call(client, 'mounts', { snapshotter: 'gcfs', key: '' }), {
    code: status.INVALID_ARGUMENT,
  });
  await call(client, 'remove', { snapshotter: 'gcfs', key: 'ns/3/view' });
  await call(client, 'cleanup', { snapshotter: 'gcfs' });
  assert.deepEqual(
    (await listAll(client, [])).map((info) => info.name),
    ['ns/2/sha256:aaa'],
  );
});

test('over-long keys, labels and filters are INVALID_ARGUMENT, as containerd validates them', async (t) => {
  const client = await serve(t);
  const long = 'k'.repeat(5000);
  const longKey = 'k'.repeat(513);
  const refusals: Array<[keyof pb.SnapshotsClient, object]> = [
    ['prepare', { snapshotter: 'gcfs', key: longKey, parent: '', labels: {} }],
    ['prepare', { snapshotter: 'gcfs', key: 'k', parent: longKey, labels: {} }],
    ['prepare', { snapshotter: 'gcfs', key: 'k', parent: '', labels: { 'containerd.io/x': long } }],
    ['commit', { snapshotter: 'gcfs', name: longKey, key: 'k', labels: {} }],
    ['stat', { snapshotter: 'gcfs', key: longKey }],
  ];
  for (const [method, req] of refusals) {
    await assert.rejects(call(client, method, req), { code: status.INVALID_ARGUMENT }, method);
  }
  await assert.rejects(listAll(client, [`name==${long}`]), { code: status.INVALID_ARGUMENT });
  // Within the limits (a label's key and value together 4096, as containerd's labels.Validate;
  // keys of 512, even of 3-byte characters, within lmdb's) all is well.
  const label = { [`containerd.io/${'l'.repeat(100)}`]: 'v'.repeat(3900) };
  await call(client, 'prepare', { snapshotter: 'gcfs', key: '€'.repeat(512), parent: '', labels: label });
  assert.equal((await listAll(client, [])).length, 1);
});
