// gRPC probes of the node's daemons (cfsd, the downloader, gcfsd's admin, snapshotter and
// keychain sockets): a client of each, the targets they aim at, calls that settle with what the
// daemon answered (never reject), the valid request each daemon must keep answering, and a
// hammer that fires probes in rounds.

import { randomBytes } from 'node:crypto';
import { downloadRequestFor } from '@gcfs/downloader';
import { containerfs, cri, downloader, gcfsdAdmin, gcfsdKeychain, snapshots } from '@gcfs/proto';
import { type Client, type ClientReadableStream, credentials, Metadata } from '@grpc/grpc-js';

export interface Targets {
  registryHost: string;
  cfsdAddress: string;
  downloaderSocket: string;
  /** The downloader's --layer_cache_dir: requests name dirs in it. */
  cacheDir: string;
  adminSocket: string;
  snapshotterSocket: string;
  /** gcfsd's keychain, proxying CRI's image service to a containerd that is not there. */
  keychainSocket: string;
  /** An image cfsd can index and its first layer, for requests wrong in one field only. */
  image: string;
  layer: LayerRef;
  /** An image whose layer blob in the registry no longer matches its digest. */
  damaged: { image: string; layer: LayerRef };
}

export interface LayerRef {
  digest: string;
  mediaType: string;
  size: number;
}

export type Daemon = 'cfsd' | 'downloader' | 'admin' | 'snapshotter' | 'keychain';
export const DAEMONS: readonly Daemon[] = ['cfsd', 'downloader', 'admin', 'snapshotter', 'keychain'];

/** One request; settles with 'ok', the gRPC status code, or what the connection did. */
export type Probe = () => Promise<string>;

export interface CallOptions {
  /** Cancel the call this long after it starts (0: as soon as it is sent). */
  cancelAfterMs?: number;
}

type UnaryFn = (
  req: unknown,
  md: Metadata,
  cb: (err: { code?: number } | null) => void,
) => {
  cancel(): void;
};

/** A unary call, cancelled after `cancelAfterMs` when given. */
export function rpc(client: Client, method: string, req: unknown, o: CallOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, UnaryFn>)[method]!;
    const call = fn.call(client, req, new Metadata(), (err) => resolve(err ? `code ${err.code}` : 'ok'));
    if (o.cancelAfterMs !== undefined) setTimeout(() => call.cancel(), o.cancelAfterMs);
  });
}

/** A server stream, read to its end, or cancelled once its first message arrived. */
export function stream(client: Client, method: string, req: unknown, o: { cancelOnFirst?: boolean } = {}) {
  return new Promise<string>((resolve) => {
    const fn = (client as unknown as Record<string, (req: unknown) => ClientReadableStream<unknown>>)[
      method
    ]!;
    const call = fn.call(client, req);
    call.on('data', () => {
      if (o.cancelOnFirst) call.cancel();
    });
    call.on('error', (err: { code?: number }) => resolve(`code ${err.code}`));
    call.on('end', () => resolve('ok'));
  });
}

function grpcClient<C extends Client>(
  Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C,
  address: string,
): C {
  return new Ctor(address, credentials.createInsecure());
}

/** A Download as gcfsd sends it (anonymous): the layer's dirs in `dirs` (gcfsd's cache dir). */
export function downloadRequest(dirs: string, image: string, layer: LayerRef): downloader.DownloadRequest {
  return downloader.DownloadRequest.fromPartial(downloadRequestFor(dirs, image, layer));
}

/** A gRPC client of each daemon (one channel each). */
export class DaemonClients {
  readonly cfsd: containerfs.ContainerFSClient;
  readonly downloader: downloader.DownloaderClient;
  readonly admin: gcfsdAdmin.AdminClient;
  readonly snapshotter: snapshots.SnapshotsClient;
  readonly keychain: gcfsdKeychain.KeychainClient;
  /** CRI's image service on the keychain socket, as kubelet calls it. */
  readonly keychainImages: cri.ImageServiceClient;

  constructor(t: Targets) {
    this.cfsd = grpcClient(containerfs.ContainerFSClient, t.cfsdAddress);
    this.downloader = grpcClient(downloader.DownloaderClient, `unix:${t.downloaderSocket}`);
    this.admin = grpcClient(gcfsdAdmin.AdminClient, `unix:${t.adminSocket}`);
    this.snapshotter = grpcClient(snapshots.SnapshotsClient, `unix:${t.snapshotterSocket}`);
    this.keychain = grpcClient(gcfsdKeychain.KeychainClient, `unix:${t.keychainSocket}`);
    this.keychainImages = grpcClient(cri.ImageServiceClient, `unix:${t.keychainSocket}`);
  }

  close(): void {
    for (const client of [
      this.cfsd,
      this.downloader,
      this.admin,
      this.snapshotter,
      this.keychain,
      this.keychainImages,
    ])
      client.close();
  }
}

/** Fire every probe at once; the answers, in probe order. */
export function fireAll(probes: readonly Probe[]): Promise<string[]> {
  return Promise.all(probes.map((probe) => probe()));
}

/** Fires its probes in rounds, all of a round at once, from creation until stop(). */
export class Hammer {
  #rounds = 0;
  #stopped = false;
  readonly #running: Promise<void>;

  constructor(probes: readonly Probe[]) {
    this.#running = (async () => {
      while (!this.#stopped) {
        await fireAll(probes);
        this.#rounds += 1;
      }
    })();
  }

  /** Rounds every probe of which has been answered. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Let the round under way finish; no new one starts. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }
}

/**
 * One valid request per daemon, each 'ok' when answered as it should be (the downloader's
 * publishes the layer, the admin's registers the image).
 */
export function validProbes(t: Targets, clients: DaemonClients): Record<Daemon, Probe> {
  const { cfsd, downloader: dl, admin, snapshotter: snap, keychain } = clients;
  const answer = <Res>(
    call: (cb: (err: Error | null, res: Res) => void) => unknown,
    ok: (res: Res) => boolean,
  ) =>
    new Promise<string>((resolve) =>
      call((err, res) => resolve(err ? err.message : ok(res) ? 'ok' : JSON.stringify(res))),
    );
  const key = `valid/${randomBytes(6).toString('hex')}`;
  const digest = t.layer.digest;
  return {
    cfsd: () =>
      answer<containerfs.AuthImageResponse>(
        (cb) => cfsd.authImage(containerfs.AuthImageRequest.fromPartial({ image: t.image, wait: true }), cb),
        (res) => res.status === containerfs.ImageStatus.IMAGE_STATUS_READY,
      ),
    downloader: () =>
      answer<downloader.DownloadResponse>(
        (cb) => dl.download(downloadRequest(t.cacheDir, t.image, t.layer), cb),
        (res) => res.succeeded,
      ),
    admin: () =>
      answer<gcfsdAdmin.Image>(
        (cb) => admin.registerImage(gcfsdAdmin.RegisterImageRequest.fromPartial({ image: t.image }), cb),
        (res) => res.layers.some((layer) => layer.digest === digest),
      ),
    snapshotter: async () => {
      const prepared = await answer<snapshots.PrepareSnapshotResponse>(
        (cb) => snap.prepare(snapshots.PrepareSnapshotRequest.fromPartial({ snapshotter: 'gcfs', key }), cb),
        (res) => res.mounts.length > 0,
      );
      const removed = await rpc(snap, 'remove', { snapshotter: 'gcfs', key });
      return prepared === 'ok' ? removed : prepared;
    },
    keychain: () =>
      rpc(
        keychain,
        'updateCreds',
        gcfsdKeychain.UpdateCredsRequest.fromPartial({
          image: t.image,
          credentials: { username: 'valid', password: 'valid-probe-secret' },
        }),
      ),
  };
}
