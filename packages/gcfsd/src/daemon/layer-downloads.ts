// Background downloads of whole layers through `gcfsd --downloader`: one per layer however
// many images share it, retried while the downloader is away (it may start after us, or
// restart), and reported so that the layer's reads and symlinks switch to the local copy.
// A layer the downloader fails 3 times (or whose blob does not match its digest) is given
// up: the registrar marks it failed (layer-state.ts) and it stays streamed.

import {
  type BackoffOptions,
  boundText,
  describeError,
  ErrorCode,
  isGcfsError,
  type Logger,
  retryUntilStopped,
  SingleFlight,
} from '@gcfs/core';
import {
  type DownloadOutcome,
  type DownloadRequest,
  downloadRequestFor,
  type PullSecret,
} from '@gcfs/downloader';
import type { LayerRecord } from './images-in-use.js';

/** Registry credentials a layer is downloaded with. */
export type PullCredential = PullSecret;

/** What gcfsd needs of the downloader (DownloaderClient has it). */
export interface LayerDownloader {
  download(request: DownloadRequest): Promise<DownloadOutcome>;
  /** Abort the layer's download (its caller gets ERR_ABORTED); false when none runs. */
  cancel(layerId: string): Promise<boolean>;
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
  /** The downloader failed `maxFailedAttempts` times (or the blob does not match its digest). */
  onGiveUp: (layer: string, failure: { reason: string; code: string; attempts: number }) => void;
  /** The download stopped because yieldTo() asked it to (it was not done); what it was started with. */
  onYield?: (image: string, layer: LayerRecord, credential: PullCredential) => void;
  onResult?: (result: DownloadResult) => void;
  /** Attempts of a download the downloader answered with a failure (default 3). */
  maxFailedAttempts?: number;
  backoff?: BackoffOptions;
}

export class LayerDownloads {
  readonly #options: LayerDownloadsOptions;
  readonly #running = new SingleFlight<string, void>();
  /** Layers whose download is to stop: their index came first. */
  readonly #yielding = new Set<string>();
  readonly #stop = new AbortController();

  constructor(options: LayerDownloadsOptions) {
    this.#options = options;
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /** Download `layer` of `image` unless it is already under way; never rejects. */
  start(image: string, layer: LayerRecord, credential: PullCredential): Promise<void> {
    return this.#running.run(layer.digest, () => this.#run(image, layer, credential));
  }

  /**
   * Stop the layer's download, if one runs: cfsd's index won the race, and the link is the
   * starting container's now. The layer is downloaded again later (see onYield).
   */
  yieldTo(layer: string): void {
    if (!this.#running.has(layer)) return;
    this.#yielding.add(layer);
    this.#options.downloader.cancel(layer).catch(() => false);
  }

  /** Stop retrying; downloads in progress finish in the downloader, unobserved. */
  close(): void {
    this.#stop.abort();
  }

  async #run(image: string, layer: LayerRecord, credential: PullCredential): Promise<void> {
    const { cacheDir, logger } = this.#options;
    const request = downloadRequestFor(cacheDir, image, layer, credential);
    const dir = request.layerDir;
    const fields = { cached_layer_dir: dir, image_name: image, layer_id: layer.digest, module: 'layercache' };
    logger.info('Async layer download started', { image, layer: layer.digest, module: 'filesystem_lib' });
    const maxFailed = this.#options.maxFailedAttempts ?? 3;
    let failed = 0;
    const giveUp = (reason: string, code: string) => {
      this.#options.onGiveUp(layer.digest, { reason: boundText(reason), code, attempts: failed });
      return true;
    };
    const yielded = () => {
      if (!this.#yielding.delete(layer.digest)) return false;
      logger.info('Layer download stopped: its index came first', fields);
      this.#options.onYield?.(image, layer, credential);
      return true;
    };
    await retryUntilStopped(
      async (attempt) => {
        if (yielded()) return true;
        let outcome: DownloadOutcome;
        try {
          outcome = await this.#options.downloader.download(request);
        } catch (err) {
          // Unreachable downloader: wait for it as long as the daemon runs.
          const error = describeError(err);
          logger.warn('Layer download request failed', { ...fields, attempt, error });
          if (isGcfsError(err, ErrorCode.DownloaderUnavailable) || ++failed < maxFailed) return false;
          return giveUp(error, isGcfsError(err) ? err.code : ErrorCode.Internal);
        }
        const succeeded = outcome.succeeded;
        if (!succeeded && yielded()) return true;
        // The downloader bounds its answer; an older or hostile one is bounded here.
        const reason = boundText(outcome.errorReason);
        const level = succeeded ? 'info' : 'error';
        logger[level](`Layer download/untar done (succeeded=${succeeded})`, {
          ...fields,
          ...(succeeded ? {} : { error: reason, error_code: outcome.errorCode }),
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
          this.#yielding.delete(layer.digest);
          this.#options.onLocal(layer.digest, dir);
          return true;
        }
        failed++;
        // A blob that does not match its digest will not match next time either.
        if (outcome.hasMismatchedHash || failed >= maxFailed) return giveUp(reason, outcome.errorCode);
        return false;
      },
      { backoff: this.#options.backoff ?? { initialMs: 500, maxMs: 30_000 }, signal: this.#stop.signal },
    );
  }
}
