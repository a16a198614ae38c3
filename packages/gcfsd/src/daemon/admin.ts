// gcfsd's admin API (gcfs.gcfsd.v1.Admin) on a root-only Unix socket beside the mount
// point: what the snapshotter does in-process, for tools and tests.

import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { checkImageRequest, checkLength, ErrorCode, GcfsError, Limits, quote } from '@gcfs/core';
import { gcfsdAdmin as pb } from '@gcfs/proto';
import { bindGrpcUnixSocket, createUnixSocketServer, fromServiceError, stopGrpc, unary } from '@gcfs/serving';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import type { GcResult } from './gc.js';
import type { PullCredential } from './layer-downloads.js';
import type { RegisteredImage } from './served-images.js';

/** Next to the mount point, as GKE's gcfsd keeps its keychain socket (/run/gcfsd/keychain.sock). */
export function adminSocketPath(mountPoint: string): string {
  return join(dirname(mountPoint), 'admin.sock');
}

/** The calls the endpoint serves (the daemon's Registrar and GarbageCollector). */
export interface AdminApi {
  register(image: string, options: { credential?: PullCredential; wait?: boolean }): Promise<RegisteredImage>;
  unregister(name: string): Promise<boolean>;
  list(): RegisteredImage[];
  collect(): Promise<GcResult>;
}

function toWire(image: RegisteredImage): pb.Image {
  return {
    name: image.name,
    path: image.path,
    manifestDigest: image.manifestDigest,
    layers: image.layers,
    registeredAtUnixMs: image.registeredAt,
  };
}

function fromWire(image: pb.Image): RegisteredImage {
  return {
    name: image.name,
    path: image.path,
    manifestDigest: image.manifestDigest,
    layers: image.layers,
    registeredAt: image.registeredAtUnixMs,
  };
}

/** Serve the admin API; resolves with a stop function. */
export async function serveAdmin(api: AdminApi, socketPath: string): Promise<{ stop(): Promise<void> }> {
  const server = createUnixSocketServer();
  const service: pb.AdminServer = {
    registerImage: unary(async (req: pb.RegisterImageRequest) => {
      checkImageRequest(req.image, 'credential', req.credential);
      // An explicit registration answers once every layer is indexed, as it always has.
      return toWire(
        await api.register(req.image, {
          wait: true,
          ...(req.credential ? { credential: req.credential } : {}),
        }),
      );
    }),
    listImages: unary(async () => ({ images: api.list().map(toWire) })),
    unregisterImage: unary(async (req: pb.UnregisterImageRequest) => {
      checkLength('name', req.name, Limits.reference);
      if (!(await api.unregister(req.name))) {
        throw new GcfsError(ErrorCode.NotFound, `image ${quote(req.name)} is not in use`);
      }
      return {};
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

/** A client of the admin API, for tools and tests. */
export class AdminClient {
  readonly #client: pb.AdminClient;

  constructor(socketPath: string) {
    this.#client = new pb.AdminClient(`unix:${socketPath}`, credentials.createInsecure());
  }

  async register(image: string, credential?: PullCredential): Promise<RegisteredImage> {
    const req = pb.RegisterImageRequest.fromPartial({ image, ...(credential ? { credential } : {}) });
    return fromWire(await this.#call<pb.RegisterImageRequest, pb.Image>('registerImage', req));
  }

  async list(): Promise<RegisteredImage[]> {
    return (await this.#call<pb.ListImagesRequest, pb.ListImagesResponse>('listImages', {})).images.map(
      fromWire,
    );
  }

  async unregister(name: string): Promise<void> {
    await this.#call('unregisterImage', { name });
  }

  collect(): Promise<GcResult> {
    return this.#call<pb.CollectGarbageRequest, GcResult>('collectGarbage', {});
  }

  close(): void {
    this.#client.close();
  }

  async #call<Req, Res>(method: keyof pb.AdminClient & string, req: Req): Promise<Res> {
    const fn = promisify((this.#client[method] as (...args: unknown[]) => unknown).bind(this.#client)) as (
      req: Req,
    ) => Promise<Res>;
    try {
      return await fn(req);
    } catch (err) {
      throw fromServiceError(err as ServiceError, `gcfsd admin ${method}`, () => ErrorCode.Internal);
    }
  }
}
