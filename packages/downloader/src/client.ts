import { downloader as pb } from '@gcfs/proto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { DownloadOutcome, DownloadRequest, LayerStatus } from './types.js';
import { fromDownloaderError, stateFromWire } from './wire.js';

export interface DownloaderClientOptions {
  /** Deadline of GetLayerState and Cancel calls (default 10 s). Download has none by default. */
  callTimeoutMs?: number;
}

export interface DownloadCallOptions {
  /** Abandons the call (the download itself goes on: use cancel() to stop it). */
  signal?: AbortSignal;
  /** A deadline for the whole download. */
  timeoutMs?: number;
}

/**
 * The FUSE side's view of `gcfsd --downloader`, over its Unix socket. Failures to reach it
 * are ERR_DOWNLOADER_UNAVAILABLE; requests it refuses keep its own error code.
 */
export class DownloaderClient {
  readonly #raw: pb.DownloaderClient;
  readonly #callTimeoutMs: number;

  constructor(socketPath: string, options: DownloaderClientOptions = {}) {
    this.#raw = new pb.DownloaderClient(`unix:${socketPath}`, credentials.createInsecure());
    this.#callTimeoutMs = options.callTimeoutMs ?? 10_000;
  }

  /** Download a layer into the cache; resolves once it is there, or with why it is not. */
  async download(request: DownloadRequest, options: DownloadCallOptions = {}): Promise<DownloadOutcome> {
    const message = pb.DownloadRequest.fromPartial({
      imageName: request.imageName,
      layerId: request.layerId,
      layerDir: request.layerDir,
      untarDir: request.untarDir,
      mediaType: request.mediaType ?? '',
      size: request.size ?? 0,
      pullSecret: request.pullSecret,
    });
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    return this.#call<pb.DownloadRequest, pb.DownloadResponse>(
      `download of ${request.layerId}`,
      (req, opts, cb) => this.#raw.download(req, new Metadata(), opts, cb),
      message,
      deadline,
      options.signal,
    );
  }

  /** Where a layer stands: absent, queued, downloading (bytes so far), done or failed. */
  async state(layerId: string): Promise<LayerStatus> {
    const wire = await this.#call<pb.GetLayerStateRequest, pb.LayerState>(
      `state of ${layerId}`,
      (req, opts, cb) => this.#raw.getLayerState(req, new Metadata(), opts, cb),
      { layerId },
      Date.now() + this.#callTimeoutMs,
    );
    return { ...wire, state: stateFromWire(wire.state) };
  }

  /** Abort a queued or running download; false when there was none. */
  async cancel(layerId: string): Promise<boolean> {
    const { cancelled } = await this.#call<pb.CancelRequest, pb.CancelResponse>(
      `cancel of ${layerId}`,
      (req, opts, cb) => this.#raw.cancel(req, new Metadata(), opts, cb),
      { layerId },
      Date.now() + this.#callTimeoutMs,
    );
    return cancelled;
  }

  close(): void {
    this.#raw.close();
  }

  #call<Req, Res>(
    what: string,
    method: (
      req: Req,
      options: { deadline: number },
      callback: (err: ServiceError | null, res: Res) => void,
    ) => { cancel(): void },
    request: Req,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      const call = method(request, { deadline }, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(fromDownloaderError(err, `downloader ${what}`));
        else resolve(res);
      });
      const onAbort = () => call.cancel();
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
