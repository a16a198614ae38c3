// Background downloads of whole layers through `gcfsd --downloader`: one per layer however
// many images share it, retried while the downloader is away (it may start after us, or
// restart), and reported so that the layer's reads and symlinks switch to the local copy.

import {
  type BackoffOptions,
  backoffDelay,
  describeError,
  ErrorCode,
  isGcfsError,
  type Logger,
  sleep,
} from '@gcfs/core';
import type { DownloadOutcome, DownloadRequest, PullSecret } from '@gcfs/downloader';
import type { LayerRecord } from './images-in-use.js';
import { cachedLayerDir, untarLayerDir } from './layer-dirs.js';

/** Registry credentials a layer is downloaded with. */
export type PullCredential = PullSecret;

/** What gcfsd needs of the downloader (DownloaderClient has it). */
export interface LayerDownloader {
  download(request: DownloadRequest): Promise<DownloadOutcome>;
}

/** One download finished, for metrics. */
export interface DownloadResult {
  image: string;
  layer: string;
  succeeded: boolean;
  alreadyPresent: boolean;
  bytes: number;
  seconds: number;
}

export interface LayerDownloadsOptions {
  downloader: LayerDownloader;
  cacheDir: string;
  logger: Logger;
  /** The layer is complete at `dir`. */
  onLocal: (layer: string, dir: string) => void;
  onResult?: (result: DownloadResult) => void;
  /** Attempts of a download the downloader answered with a failure (default 3). */
  maxFailedAttempts?: number;
  backoff?: BackoffOptions;
}

export class LayerDownloads {
  readonly #options: LayerDownloadsOptions;
  readonly #running = new Map<string, Promise<void>>();
  readonly #stop = new AbortController();

  constructor(options: LayerDownloadsOptions) {
    this.#options = options;
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /** Download `layer` of `image` unless it is already under way; never rejects. */
  start(image: string, layer: LayerRecord, credential: PullCredential): Promise<void> {
    let running = this.#running.get(layer.digest);
    if (running === undefined) {
      running = this.#run(image, layer, credential).finally(() => this.#running.delete(layer.digest));
      this.#running.set(layer.digest, running);
    }
    return running;
  }

  /** Stop retrying; downloads in progress finish in the downloader, unobserved. */
  close(): void {
    this.#stop.abort();
  }

  async #run(image: string, layer: LayerRecord, credential: PullCredential): Promise<void> {
    const { cacheDir, logger } = this.#options;
    const dir = cachedLayerDir(cacheDir, layer.digest);
    const fields = { cached_layer_dir: dir, image_name: image, layer_id: layer.digest, module: 'layercache' };
    const request: DownloadRequest = {
      imageName: image,
      layerId: layer.digest,
      layerDir: dir,
      untarDir: untarLayerDir(cacheDir, layer.digest),
      mediaType: layer.mediaType,
      size: layer.size,
      pullSecret: credential,
    };
    logger.info('Async layer download started', { image, layer: layer.digest, module: 'filesystem_lib' });
    const maxFailed = this.#options.maxFailedAttempts ?? 3;
    const backoff = this.#options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let failed = 0;
    for (let attempt = 1; !this.#stop.signal.aborted; attempt++) {
      let outcome: DownloadOutcome;
      try {
        outcome = await this.#options.downloader.download(request);
      } catch (err) {
        // Unreachable downloader: wait for it as long as the daemon runs.
        const unavailable = isGcfsError(err, ErrorCode.DownloaderUnavailable);
        logger.warn('Layer download request failed', { ...fields, attempt, error: describeError(err) });
        if (!unavailable && ++failed >= maxFailed) break;
        if (!(await this.#pause(attempt, backoff))) return;
        continue;
      }
      const succeeded = outcome.succeeded;
      const level = succeeded ? 'info' : 'error';
      logger[level](`Layer download/untar done (succeeded=${succeeded})`, {
        ...fields,
        ...(succeeded ? {} : { error: outcome.errorReason, error_code: outcome.errorCode }),
        hasMismatchedHash: outcome.hasMismatchedHash,
      });
      this.#options.onResult?.({
        image,
        layer: layer.digest,
        succeeded,
        alreadyPresent: outcome.alreadyPresent,
        bytes: outcome.bytes,
        seconds: outcome.seconds,
      });
      if (succeeded) {
        this.#options.onLocal(layer.digest, dir);
        return;
      }
      // A blob that does not match its digest will not match next time either.
      if (outcome.hasMismatchedHash || ++failed >= maxFailed) break;
      if (!(await this.#pause(attempt, backoff))) return;
    }
    logger.error('Giving up downloading the layer: it stays streamed from cfsd', fields);
  }

  /** Wait before the next attempt; false once the daemon stops. */
  async #pause(attempt: number, backoff: BackoffOptions): Promise<boolean> {
    try {
      await sleep(backoffDelay(attempt, backoff), this.#stop.signal);
      return true;
    } catch {
      return false;
    }
  }
}
