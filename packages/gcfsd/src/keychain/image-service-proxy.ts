// CRI's runtime.v1.ImageService in front of containerd's: kubelet is pointed at the keychain
// socket with --image-service-endpoint and its pulls carry the pod's pull secrets, which is
// how gcfsd learns them with a stock kubelet and a stock containerd. Every call is forwarded
// as its serialized bytes, unchanged, with the caller's deadline and cancellation; answers and
// failures come back as containerd gave them (status, message, trailers). Only PullImage is
// decoded, to see its auth before containerd pulls (the snapshotter registers the image during
// the pull, with whatever the keychain holds by then).

import { describeError, type Logger } from '@gcfs/core';
import { cri } from '@gcfs/proto';
import {
  Client,
  credentials,
  type Server,
  type ServerUnaryCall,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js';

/**
 * kubelet's own limit on CRI messages (pkg/kubelet/cri/remote: maxMsgSize), both ways: a
 * PullImage carries the pod's sandbox config, whose annotations alone may reach 256 KiB.
 */
export const CRI_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/**
 * containerd is on the same node: a connection lost (containerd restarted) is retried within a
 * second, not after grpc-js's default backoff of up to two minutes, during which every call
 * would fail at once with UNAVAILABLE.
 */
const RECONNECT_BACKOFF_MS = { initial: 100, max: 1_000 };

const bytes = (value: Buffer) => value;

/**
 * Sees each PullImage before it is forwarded; what it returns is called if the pull fails
 * (to forget credentials that did not work).
 */
export type PullObserver = (request: cri.PullImageRequest) => Promise<(() => Promise<void>) | undefined>;

export interface ImageServiceProxyOptions {
  /** containerd's socket (CRI is served on it). */
  containerdAddress: string;
  onPull: PullObserver;
  logger: Logger;
}

export class ImageServiceProxy {
  readonly #o: ImageServiceProxyOptions;
  readonly #containerd: Client;

  constructor(options: ImageServiceProxyOptions) {
    this.#o = options;
    this.#containerd = new Client(`unix:${options.containerdAddress}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': CRI_MAX_MESSAGE_BYTES,
      'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.initial,
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.max,
    });
  }

  /** Serve every ImageService method on `server`. */
  addTo(server: Server): void {
    for (const method of Object.values(cri.ImageServiceService)) {
      const isPull = method.path === cri.ImageServiceService.pullImage.path;
      server.register<Buffer, Buffer>(
        method.path,
        (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
          void this.#forward(method.path, isPull, call, callback);
        },
        bytes,
        bytes,
        'unary',
      );
    }
  }

  close(): void {
    this.#containerd.close();
  }

  async #forward(
    path: string,
    isPull: boolean,
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
  ): Promise<void> {
    const undo = isPull ? await this.#observePull(call.request) : undefined;
    if (call.cancelled) {
      // Gone while its secret was being recorded: containerd never sees it.
      if (undo !== undefined) void undo();
      return;
    }
    const metadata = call.metadata.clone();
    // grpc-js sets its own; a forwarded one would be sent twice.
    metadata.remove('user-agent');
    const forwarded = this.#containerd.makeUnaryRequest<Buffer, Buffer>(
      path,
      bytes,
      bytes,
      call.request,
      metadata,
      { deadline: call.getDeadline() },
      (err: ServiceError | null, response?: Buffer) => {
        if (err === null) {
          callback(null, response);
          return;
        }
        callback({ code: err.code, details: err.details, metadata: err.metadata });
        if (undo !== undefined) void undo();
      },
    );
    call.once('cancelled', () => forwarded.cancel());
  }

  /** Never fails the call: containerd decides about a request gcfsd cannot read. */
  async #observePull(request: Buffer): Promise<(() => Promise<void>) | undefined> {
    try {
      return await this.#o.onPull(cri.PullImageRequest.decode(request));
    } catch (err) {
      this.#o.logger.warn('Cannot record the credentials of a pull; it is forwarded as is', {
        module: 'keychain',
        error: describeError(err),
      });
      return undefined;
    }
  }
}
