// The client of gcfsd's admin API (gcfs.gcfsd.v1.Admin) on its root-only Unix socket beside
// the mount point, for gcfsctl and the tests. It loads neither FUSE nor the daemon:
// `@gcfs/gcfsd/admin-client` is all a command-line tool needs.

import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { gcfsdAdmin as pb } from '@gcfs/proto';
import { fromServiceError, isServiceError } from '@gcfs/serving';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import type { ImageView, LayerView, NodeStatusView } from './admin-types.js';
import type { GcResult } from './gc.js';
import type { PullCredential } from './layer-downloads.js';

export type * from './admin-types.js';

import type { IndexProgress, LayerState } from './layer-state.js';

/** Next to the mount point, as GKE's gcfsd keeps its keychain socket (/run/gcfsd/keychain.sock). */
export function adminSocketPath(mountPoint: string): string {
  return join(dirname(mountPoint), 'admin.sock');
}

/** A layer from the wire; `images` is empty in an image's own list. */
function layerFromWire(layer: pb.ImageLayer): LayerView {
  return {
    digest: layer.digest,
    local: layer.local,
    state: layer.state as LayerState,
    index: layer.index as IndexProgress,
    size: layer.size,
    images: layer.images,
    ...(layer.download && {
      download: {
        phase: layer.download.phase === 'queued' ? 'queued' : 'downloading',
        bytes: layer.download.bytes,
        size: layer.download.size,
      },
    }),
    ...(layer.downloadFailure !== '' && {
      downloadFailure: { reason: layer.downloadFailure, code: layer.downloadFailureCode },
    }),
    ...(layer.indexFailure !== '' && { indexFailure: layer.indexFailure }),
  };
}

function imageFromWire(image: pb.Image): ImageView {
  return {
    name: image.name,
    path: image.path,
    manifestDigest: image.manifestDigest,
    layers: image.layers.map(layerFromWire),
    registeredAt: image.registeredAtUnixMs,
  };
}

/** '' on the wire is "no error". */
function withError<T extends object>(fields: T, error: string): T & { error?: string } {
  return error === '' ? fields : { ...fields, error };
}

function statusFromWire(s: pb.StatusResponse): NodeStatusView {
  const cfsd = s.cfsd ?? pb.CfsdStatus.fromPartial({});
  const downloader = s.downloader ?? pb.DownloaderStatus.fromPartial({});
  const cache = s.layerCache ?? pb.LayerCacheStatus.fromPartial({});
  const content = s.contentCache ?? pb.ContentCacheStatus.fromPartial({});
  return {
    version: s.version,
    pid: s.pid,
    startedAt: s.startedAtUnixMs,
    uptimeMs: s.uptimeMs,
    mountPoint: s.mountPoint,
    mounted: s.mounted,
    cfsd: withError({ address: cfsd.address, reachable: cfsd.reachable }, cfsd.error),
    downloader: withError(
      {
        socket: downloader.socket,
        reachable: downloader.reachable,
        inFlight: downloader.inFlight,
        queued: downloader.queued,
      },
      downloader.error,
    ),
    layerCache: withError(
      {
        dir: cache.dir,
        bytes: cache.bytes,
        layers: cache.layers,
        freeBytes: cache.freeBytes,
        sizeBytes: cache.sizeBytes,
      },
      cache.error,
    ),
    contentCache: { bytes: content.bytes, blocks: content.blocks, limitBytes: content.limitBytes },
    images: s.images,
    layers: {
      attached: s.layers.attached ?? 0,
      streamed: s.layers.streamed ?? 0,
      downloading: s.layers.downloading ?? 0,
      local: s.layers.local ?? 0,
      failed: s.layers.failed ?? 0,
    },
    downloadsInFlight: s.downloadsInFlight,
  };
}

/** Whether a failed call was refused as unknown: a gcfsd from before that call existed. */
export function isUnimplemented(err: unknown): boolean {
  return isGcfsError(err) && isServiceError(err.cause) && err.cause.code === status.UNIMPLEMENTED;
}

export interface AdminClientOptions {
  /** Deadline of every call but register (which waits for cfsd to index the image); none by default. */
  timeoutMs?: number;
}

/** A client of the admin API. Failures are GcfsErrors with gcfsd's own code when it sent one. */
export class AdminClient {
  readonly #client: pb.AdminClient;
  readonly #timeoutMs: number | undefined;

  constructor(socketPath: string, options: AdminClientOptions = {}) {
    this.#client = new pb.AdminClient(`unix:${socketPath}`, credentials.createInsecure());
    this.#timeoutMs = options.timeoutMs;
  }

  async register(image: string, credential?: PullCredential): Promise<ImageView> {
    const req = pb.RegisterImageRequest.fromPartial({ image, ...(credential ? { credential } : {}) });
    return imageFromWire(await this.#call<pb.RegisterImageRequest, pb.Image>('registerImage', req, false));
  }

  /** The images in use, with their layers' states. */
  async list(): Promise<ImageView[]> {
    const res = await this.#call<pb.ListImagesRequest, pb.ListImagesResponse>('listImages', {});
    return res.images.map(imageFromWire);
  }

  /** Every layer the node knows, or the layers of the image in use `image` names (ERR_NOT_FOUND). */
  async layers(image = ''): Promise<{ image: string; layers: LayerView[] }> {
    const res = await this.#call<pb.ListLayersRequest, pb.ListLayersResponse>('listLayers', { image });
    return { image: res.image, layers: res.layers.map(layerFromWire) };
  }

  async status(): Promise<NodeStatusView> {
    return statusFromWire(await this.#call<pb.StatusRequest, pb.StatusResponse>('status', {}));
  }

  /** Mark the image `name` names unused; its registered name. */
  async unregister(name: string): Promise<string> {
    const res = await this.#call<pb.UnregisterImageRequest, pb.UnregisterImageResponse>('unregisterImage', {
      name,
    });
    return res.name;
  }

  collect(): Promise<GcResult> {
    return this.#call<pb.CollectGarbageRequest, GcResult>('collectGarbage', {});
  }

  close(): void {
    this.#client.close();
  }

  async #call<Req, Res>(method: keyof pb.AdminClient & string, req: Req, bounded = true): Promise<Res> {
    const fn = promisify((this.#client[method] as (...args: unknown[]) => unknown).bind(this.#client)) as (
      req: Req,
      options: { deadline?: number },
    ) => Promise<Res>;
    const timeout = bounded ? this.#timeoutMs : undefined;
    try {
      return await fn(req, timeout === undefined ? {} : { deadline: Date.now() + timeout });
    } catch (err) {
      throw fromServiceError(err as ServiceError, `gcfsd admin ${method}`, (code) =>
        code === status.UNAVAILABLE ? ErrorCode.GcfsdUnavailable : ErrorCode.Internal,
      );
    }
  }
}
