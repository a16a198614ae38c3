// gcfsd's admin API (gcfs.gcfsd.v1.Admin) on a root-only Unix socket beside the mount point:
// what the snapshotter does in-process, and what gcfsctl shows of the node. The client is in
// admin-client.ts.

import { checkImageRequest, checkLength, ErrorCode, GcfsError, Limits, quote } from '@gcfs/core';
import { gcfsdAdmin as pb } from '@gcfs/proto';
import { bindGrpcUnixSocket, createUnixSocketServer, stopGrpc, unary } from '@gcfs/serving';
import type { LayerView, NodeStatusView } from './admin-types.js';
import type { GcResult } from './gc.js';
import { findImage } from './image-lookup.js';
import type { PullCredential } from './layer-downloads.js';
import type { RegisteredImage } from './served-images.js';

export { AdminClient, type AdminClientOptions, adminSocketPath } from './admin-client.js';

/** The calls the endpoint serves (the daemon's Registrar, GarbageCollector and NodeStatus). */
export interface AdminApi {
  register(image: string, options: { credential?: PullCredential; wait?: boolean }): Promise<RegisteredImage>;
  unregister(name: string): Promise<boolean>;
  list(): RegisteredImage[];
  collect(): Promise<GcResult>;
  status(): Promise<NodeStatusView>;
  /** Every layer the node knows, or only those of `digests`. */
  layers(digests?: ReadonlySet<string>): Promise<LayerView[]>;
}

function layerToWire(layer: LayerView | RegisteredImage['layers'][number]): pb.ImageLayer {
  if (!('state' in layer)) return pb.ImageLayer.fromPartial(layer);
  return {
    digest: layer.digest,
    local: layer.local,
    state: layer.state,
    index: layer.index,
    size: layer.size,
    download: layer.download,
    downloadFailure: layer.downloadFailure?.reason ?? '',
    downloadFailureCode: layer.downloadFailure?.code ?? '',
    indexFailure: layer.indexFailure ?? '',
    images: layer.images,
  };
}

function imageToWire(image: RegisteredImage, layers?: ReadonlyMap<string, LayerView>): pb.Image {
  return {
    name: image.name,
    path: image.path,
    manifestDigest: image.manifestDigest,
    // In an image's own list, the images naming each layer are left out.
    layers: image.layers.map((layer) => {
      const view = layers?.get(layer.digest);
      return layerToWire(view === undefined ? layer : { ...view, images: [] });
    }),
    registeredAtUnixMs: image.registeredAt,
  };
}

function statusToWire(s: NodeStatusView): pb.StatusResponse {
  return {
    version: s.version,
    pid: s.pid,
    startedAtUnixMs: s.startedAt,
    uptimeMs: s.uptimeMs,
    mountPoint: s.mountPoint,
    mounted: s.mounted,
    cfsd: { ...s.cfsd, error: s.cfsd.error ?? '' },
    downloader: { ...s.downloader, error: s.downloader.error ?? '' },
    layerCache: { ...s.layerCache, error: s.layerCache.error ?? '' },
    contentCache: s.contentCache,
    images: s.images,
    layers: s.layers,
    downloadsInFlight: s.downloadsInFlight,
  };
}

/** Serve the admin API; resolves with a stop function. */
export async function serveAdmin(api: AdminApi, socketPath: string): Promise<{ stop(): Promise<void> }> {
  const server = createUnixSocketServer();
  const layersByDigest = async (digests?: ReadonlySet<string>) =>
    new Map((await api.layers(digests)).map((layer) => [layer.digest, layer]));
  const service: pb.AdminServer = {
    registerImage: unary(async (req: pb.RegisterImageRequest) => {
      checkImageRequest(req.image, 'credential', req.credential);
      // An explicit registration answers once every layer is indexed, as it always has.
      return imageToWire(
        await api.register(req.image, {
          wait: true,
          ...(req.credential ? { credential: req.credential } : {}),
        }),
      );
    }),
    listImages: unary(async () => {
      const layers = await layersByDigest();
      return { images: api.list().map((image) => imageToWire(image, layers)) };
    }),
    listLayers: unary(async (req: pb.ListLayersRequest) => {
      if (req.image === '') return { image: '', layers: (await api.layers()).map(layerToWire) };
      const image = findImage(api.list(), req.image);
      // gcfsctl wait polls this: only the image's layers are asked of the downloader.
      const layers = await layersByDigest(new Set(image.layers.map((layer) => layer.digest)));
      return { image: image.name, layers: imageToWire(image, layers).layers };
    }),
    status: unary(async () => statusToWire(await api.status())),
    unregisterImage: unary(async (req: pb.UnregisterImageRequest) => {
      checkLength('name', req.name, Limits.reference);
      const { name } = findImage(api.list(), req.name);
      if (!(await api.unregister(name))) {
        throw new GcfsError(ErrorCode.NotFound, `image ${quote(name)} is not in use`);
      }
      return { name };
    }),
    collectGarbage: unary(async () => {
      const result = await api.collect();
      return { images: result.images, layers: result.layers, ms: Math.round(result.ms) };
    }),
  };
  server.addService(pb.AdminService, service);
  await bindGrpcUnixSocket(server, socketPath);
  return { stop: () => stopGrpc(server, 1000, socketPath) };
}
