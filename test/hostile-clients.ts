// A hostile neighbour of the node's daemons (issue 11): requests that must fail (missing
// blobs, wrong media types, bad sizes, mismatched digests, bogus sessions, unknown layers,
// oversized names), calls cancelled midway, and connections that send garbage or hang up.
// Every probe settles with what the daemon answered; none may take a daemon down.

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { containerfs, cri, type downloader, gcfsdAdmin, gcfsdKeychain, snapshots } from '@gcfs/proto';
import {
  type CallOptions,
  type Daemon,
  type DaemonClients,
  downloadRequest,
  type Probe,
  rpc,
  stream,
  type Targets,
} from './daemon-probes.js';

/**
 * Names far past every limit: 100 KiB (under the Unix sockets' 256 KiB message limit, so the
 * daemon's own checks refuse it) and 1 MiB (refused by the transport on the Unix sockets,
 * by the checks on cfsd). Before issue 11 a 16 KiB one stalled gcfsd's event loop, FUSE
 * reads included, for about a second.
 */
const LONGS = ['n'.repeat(100 << 10), 'n'.repeat(1 << 20)];

/** Raw connections: bytes no gRPC server expects, a hang-up, a half-close. */
function garbage(address: { path: string } | { host: string; port: number }): Probe[] {
  const session = (send: (socket: ReturnType<typeof connect>) => void) => () =>
    new Promise<string>((resolve) => {
      const socket = connect(address, () => send(socket));
      socket.on('error', () => {});
      socket.on('data', () => {});
      socket.on('close', () => resolve('closed'));
      // The server may keep a half-open connection: the probe hangs up in the end.
      void delay(500).then(() => socket.destroy());
    });
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  return [
    session((s) => s.end(randomBytes(4096))),
    session((s) => s.end(Buffer.concat([preface, randomBytes(1024)]))),
    session((s) => s.end('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n')),
    // A frame header announcing a 16 MiB frame, then nothing.
    session((s) => s.write(Buffer.concat([preface, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1])]))),
    session((s) => s.end()),
    session((s) => s.destroy()),
  ];
}

function cfsdProbes(t: Targets, client: containerfs.ContainerFSClient): Probe[] {
  const pb = containerfs;
  const auth = (image: string, wait = false) => pb.AuthImageRequest.fromPartial({ image, wait });
  const session = async () =>
    new Promise<string>((resolve) => {
      client.authImage(auth(t.image), (err, res) => resolve(err ? 'no session' : res.sessionToken));
    });
  const bogus = 'e30.bm90LWEtbWFj';
  const unknownLayer = `sha256:${'ab'.repeat(32)}`;
  return [
    () => rpc(client, 'authImage', auth(`${t.registryHost}/hostile/missing:1`)),
    () => rpc(client, 'authImage', auth('Not A Reference!!')),
    () => rpc(client, 'authImage', auth('')),
    ...LONGS.map((long) => () => rpc(client, 'authImage', auth(`${t.registryHost}/${long}:1`))),
    () =>
      rpc(client, 'authImage', auth(`${t.registryHost}/hostile/${'x'.repeat(200)}@sha256:${'0'.repeat(64)}`)),
    () => rpc(client, 'authImage', auth(t.image, true), { cancelAfterMs: 1 }),
    () =>
      rpc(
        client,
        'readBlocks',
        pb.ReadBlocksRequest.fromPartial({ sessionToken: bogus, layerDigest: t.layer.digest, count: 1 }),
      ),
    () =>
      stream(
        client,
        'getLayerIndex',
        pb.GetLayerIndexRequest.fromPartial({ sessionToken: LONGS[1], layerDigest: t.layer.digest }),
      ),
    () =>
      rpc(
        client,
        'getPrefetchImageReport',
        pb.GetPrefetchImageReportRequest.fromPartial({ sessionToken: '' }),
      ),
    async () => {
      const token = await session();
      const read = (layerDigest: string, firstBlock: number, count: number) =>
        rpc(
          client,
          'readBlocks',
          pb.ReadBlocksRequest.fromPartial({ sessionToken: token, layerDigest, firstBlock, count }),
        );
      const answers = await Promise.all([
        read(unknownLayer, 0, 1),
        read(t.layer.digest, 2 ** 31, 2 ** 31),
        read(t.layer.digest, 0, 0),
        read('sha256:zz', 0, 1),
        stream(
          client,
          'getLayerIndex',
          pb.GetLayerIndexRequest.fromPartial({ sessionToken: token, layerDigest: unknownLayer }),
        ),
        stream(
          client,
          'getLayerIndex',
          pb.GetLayerIndexRequest.fromPartial({ sessionToken: token, layerDigest: t.layer.digest }),
          { cancelOnFirst: true },
        ),
        rpc(
          client,
          'reportImageReads',
          pb.ReportImageReadsRequest.fromPartial({
            sessionToken: token,
            reads: [{ layerDigest: unknownLayer, path: LONGS[0], offset: -1, length: 2 ** 40 }],
          }),
        ),
      ]);
      return answers.join(',');
    },
  ];
}

function downloaderProbes(t: Targets, client: downloader.DownloaderClient): Probe[] {
  const missing = `sha256:${'c3'.repeat(32)}`;
  type Wrong = { image?: string; digest?: string; mediaType?: string; size?: number; dirs?: string };
  const download = (o: Wrong, call: CallOptions = {}) =>
    rpc(
      client,
      'download',
      downloadRequest(o.dirs ?? t.cacheDir, o.image ?? t.image, { ...t.layer, ...o }),
      call,
    );
  const hostileImage = `${t.registryHost}/hostile/abs-path:1`;
  return [
    // Issue 11's crash: a missing blob of a media type nobody can read.
    () => download({ image: hostileImage, digest: missing, mediaType: 'text/html', size: 100 }),
    () => download({ image: hostileImage, digest: missing }),
    () => download({ mediaType: 'text/html' }),
    () => download({ mediaType: 'application/vnd.oci.image.layer.v1.tar' }),
    () => download({ size: t.layer.size + 1 }),
    () => download({ size: 100 }),
    ...LONGS.map((long) => () => download({ image: `${t.registryHost}/${long}:1` })),
    () => download({ image: 'Not A Reference!!', digest: missing }),
    () => download({ dirs: '/tmp' }),
    () => download({ digest: 'sha256:zz' }),
    () => rpc(client, 'download', downloadRequest(t.cacheDir, t.damaged.image, t.damaged.layer)),
    () => download({ image: hostileImage, digest: missing, size: 2 ** 40 }, { cancelAfterMs: 0 }),
    ...LONGS.map((long) => () => rpc(client, 'getLayerState', { layerId: long })),
    () => rpc(client, 'cancel', { layerId: missing }),
  ];
}

function adminProbes(t: Targets, client: gcfsdAdmin.AdminClient): Probe[] {
  const register = (image: string, call: CallOptions = {}) =>
    rpc(client, 'registerImage', gcfsdAdmin.RegisterImageRequest.fromPartial({ image }), call);
  return [
    () => register(`${t.registryHost}/hostile/missing:1`),
    () => register('Not A Reference!!'),
    () => register(''),
    ...LONGS.map((long) => () => register(`${t.registryHost}/${long}:1`)),
    () => register(`${t.registryHost}/hostile/missing:2`, { cancelAfterMs: 0 }),
    () => rpc(client, 'unregisterImage', { name: `${t.registryHost}/hostile/never:1` }),
    ...LONGS.map((long) => () => rpc(client, 'unregisterImage', { name: long })),
  ];
}

function snapshotterProbes(client: snapshots.SnapshotsClient): Probe[] {
  const snapshotter = 'gcfs';
  const key = () => `hostile/${randomBytes(6).toString('hex')}`;
  const prepare = (o: { key?: string; parent?: string; labels?: Record<string, string> }) =>
    snapshots.PrepareSnapshotRequest.fromPartial({ snapshotter, key: key(), ...o });
  return [
    () => rpc(client, 'prepare', prepare({ parent: 'hostile/no-such-parent' })),
    () => rpc(client, 'prepare', prepare({ key: '' })),
    () => rpc(client, 'mounts', { snapshotter, key: key() }),
    ...LONGS.map((long) => () => rpc(client, 'stat', { snapshotter, key: long })),
    () => rpc(client, 'commit', { snapshotter, name: key(), key: key(), labels: {} }),
    () => rpc(client, 'remove', { snapshotter, key: key() }),
    ...LONGS.map(
      (long) => () => stream(client, 'list', { snapshotter, filters: ['labels."unclosed==', long] }),
    ),
    // containerd's remote-snapshot labels naming an image that does not exist: a fallback
    // to a normal snapshot, removed again.
    async () => {
      const remote = key();
      const labels = {
        'containerd.io/snapshot.ref': `sha256:${'d4'.repeat(32)}`,
        'containerd.io/snapshot/cri.image-ref': `127.0.0.1:1/hostile/absent:1`,
        'containerd.io/snapshot/cri.layer-digest': `sha256:${'d4'.repeat(32)}`,
        'containerd.io/snapshot/cri.image-layers': `sha256:${'d4'.repeat(32)}`,
        'containerd.io/snapshot/cri.manifest-digest': 'sha256:zz',
      };
      const prepared = await rpc(client, 'prepare', prepare({ key: remote, labels }));
      return `${prepared},${await rpc(client, 'remove', { snapshotter, key: remote })}`;
    },
  ];
}

function keychainProbes(t: Targets, clients: DaemonClients): Probe[] {
  const update = (image: string, credentials: Partial<gcfsdAdmin.Credential> = {}, call: CallOptions = {}) =>
    rpc(
      clients.keychain,
      'updateCreds',
      gcfsdKeychain.UpdateCredsRequest.fromPartial({ image, credentials }),
      call,
    );
  const pull = (image: string, auth: Partial<cri.AuthConfig>) =>
    rpc(clients.keychainImages, 'pullImage', cri.PullImageRequest.fromPartial({ image: { image }, auth }));
  return [
    () => update(''),
    () => update('Not A Reference!!', { password: 'x-secret' }),
    ...LONGS.map((long) => () => update(`${t.registryHost}/${long}:1`, { password: 'x-secret' })),
    ...LONGS.map((long) => () => update(t.image, { username: 'u', password: long })),
    () => update(t.image, { username: 'u', password: 'cancelled' }, { cancelAfterMs: 0 }),
    // Forwarded to a containerd that is not there, whatever gcfsd makes of the auth.
    () => pull(t.image, { auth: '!!not base64!!' }),
    () => pull('Not A Reference!!', { username: 'u', password: 'p-secret' }),
    () => pull(t.image, { serverAddress: '::::', username: 'u', password: 'p-secret' }),
    ...LONGS.map(
      (long) => () => pull(`${t.registryHost}/${long}:1`, { username: 'u', password: 'p-secret' }),
    ),
    () => rpc(clients.keychainImages, 'listImages', {}, { cancelAfterMs: 0 }),
  ];
}

/** Every daemon's hostile probes: requests that must fail, and raw garbage connections. */
export function hostileProbes(t: Targets, clients: DaemonClients): Record<Daemon, Probe[]> {
  const separator = t.cfsdAddress.lastIndexOf(':');
  const cfsdSocket = {
    host: t.cfsdAddress.slice(0, separator),
    port: Number(t.cfsdAddress.slice(separator + 1)),
  };
  return {
    cfsd: [...cfsdProbes(t, clients.cfsd), ...garbage(cfsdSocket)],
    downloader: [...downloaderProbes(t, clients.downloader), ...garbage({ path: t.downloaderSocket })],
    admin: [...adminProbes(t, clients.admin), ...garbage({ path: t.adminSocket })],
    snapshotter: [...snapshotterProbes(clients.snapshotter), ...garbage({ path: t.snapshotterSocket })],
    keychain: [...keychainProbes(t, clients), ...garbage({ path: t.keychainSocket })],
  };
}
