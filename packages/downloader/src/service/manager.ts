import { EventEmitter } from 'node:events';
import {
  abortError,
  type Digest,
  describeError,
  ErrorCode,
  isGcfsError,
  parseDigest,
  SingleFlight,
} from '@gcfs/core';
import pLimit, { type LimitFunction } from 'p-limit';
import type { DownloadOutcome, DownloadRequest, LayerStatus, PullSecret } from '../types.js';
import { fetchLayer, type RegistryAccessOptions, type Untar } from './fetch-layer.js';
import type { LayerCache } from './layer-cache.js';

export interface LayerDownloaderOptions {
  cache: LayerCache;
  /** Layers fetched and unpacked at the same time (--max_layer_downloads). */
  maxConcurrent: number;
  registry?: RegistryAccessOptions;
  untar: Untar;
}

export interface LayerEvent {
  digest: Digest;
  imageName: string;
  layerDir: string;
  untarDir: string;
}

export interface LayerDownloaderEvents {
  /** A new download was accepted (it may wait for a slot). */
  queued: [LayerEvent];
  /** A download got its slot and starts fetching. */
  started: [LayerEvent];
  /** The tree is unpacked and its blob verified; syncing and publishing follow. */
  untarred: [LayerEvent & { tarBytes: number }];
  /** A download ended, either way. */
  finished: [LayerEvent & { outcome: DownloadOutcome }];
}

interface Job {
  event: LayerEvent;
  pullSecret: PullSecret | undefined;
  mediaType: string;
  size: number;
  state: 'queued' | 'downloading';
  bytes: number;
  controller: AbortController;
}

// Failures remembered for GetLayerState; older ones are forgotten first.
const MAX_REMEMBERED_FAILURES = 1000;

/**
 * Downloads layers into the cache: at most `maxConcurrent` at a time, each layer once however
 * many callers ask for it, a layer already in the cache answered at once. Emits events for
 * logs and metrics; never logs itself.
 */
export class LayerDownloader extends EventEmitter<LayerDownloaderEvents> {
  readonly cache: LayerCache;
  readonly #options: LayerDownloaderOptions;
  readonly #limit: LimitFunction;
  /** Each layer's download (or cache check), shared by every caller of that layer. */
  readonly #downloads = new SingleFlight<Digest, DownloadOutcome>();
  /** The downloads past the cache check: what state() reports and cancel() aborts. */
  readonly #jobs = new Map<Digest, Job>();
  readonly #failures = new Map<Digest, { outcome: DownloadOutcome; size: number }>();
  #closed = false;

  constructor(options: LayerDownloaderOptions) {
    super();
    this.#options = options;
    this.cache = options.cache;
    this.#limit = pLimit(options.maxConcurrent);
  }

  /** Downloads holding a slot right now. */
  get inFlight(): number {
    return this.#limit.activeCount;
  }

  /** Downloads waiting for a slot. */
  get queued(): number {
    return this.#limit.pendingCount;
  }

  /**
   * Download a layer, or join the download of it under way. Throws (ERR_INVALID_ARGUMENT,
   * ERR_INVALID_DIGEST) for a request whose paths are not this cache's; every other failure
   * is an outcome with succeeded=false.
   */
  async download(request: DownloadRequest): Promise<DownloadOutcome> {
    const digest = this.cache.checkRequest(request.layerId, request.layerDir, request.untarDir);
    return this.#downloads.run(digest, async () => {
      const stopping = () => failed(abortError(AbortSignal.abort('the downloader is stopping')), 0, 0);
      if (this.#closed) return stopping();
      if (await this.cache.has(digest)) return present();
      if (this.#closed) return stopping();
      const job: Job = {
        event: {
          digest,
          imageName: request.imageName,
          layerDir: request.layerDir,
          untarDir: request.untarDir,
        },
        pullSecret: request.pullSecret,
        mediaType: request.mediaType ?? '',
        size: request.size ?? 0,
        state: 'queued',
        bytes: 0,
        controller: new AbortController(),
      };
      this.#jobs.set(digest, job);
      this.emit('queued', job.event);
      try {
        return await this.#limit(() => this.#run(job));
      } finally {
        this.#jobs.delete(digest);
      }
    });
  }

  /** Where a layer stands. */
  async state(layerId: string): Promise<LayerStatus> {
    const digest = parseDigest(layerId);
    const job = this.#jobs.get(digest);
    const failure = this.#failures.get(digest);
    const status: LayerStatus = {
      layerId: digest,
      state: 'absent',
      bytes: job?.bytes ?? failure?.outcome.bytes ?? 0,
      size: job?.size ?? failure?.size ?? 0,
      errorReason: '',
      errorCode: '',
      hasMismatchedHash: false,
      inFlight: this.inFlight,
      queued: this.queued,
    };
    if (job) status.state = job.state;
    else if (await this.cache.has(digest)) status.state = 'done';
    else if (failure) {
      status.state = 'failed';
      status.errorReason = failure.outcome.errorReason;
      status.errorCode = failure.outcome.errorCode;
      status.hasMismatchedHash = failure.outcome.hasMismatchedHash;
    }
    return status;
  }

  /** Abort a queued or running download; false when there is none for this layer. */
  cancel(layerId: string): boolean {
    const job = this.#jobs.get(parseDigest(layerId));
    if (!job) return false;
    job.controller.abort(new Error('cancelled'));
    return true;
  }

  /** Refuse new downloads, abort the ones under way and wait until they have cleaned up. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.values()) job.controller.abort(new Error('the downloader is stopping'));
    await Promise.allSettled([...this.#jobs.keys()].map((digest) => this.#downloads.get(digest)));
  }

  async #run(job: Job): Promise<DownloadOutcome> {
    const { signal } = job.controller;
    if (signal.aborted) return this.#finish(job, failed(abortError(signal), 0, 0));
    job.state = 'downloading';
    this.emit('started', job.event);
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      if (await this.cache.has(job.event.digest)) return this.#finish(job, present());
      const fetched = await fetchLayer(
        {
          imageName: job.event.imageName,
          digest: job.event.digest,
          mediaType: job.mediaType,
          size: job.size,
          pullSecret: job.pullSecret,
        },
        {
          cache: this.cache,
          registry: this.#options.registry ?? {},
          untar: this.#options.untar,
          signal,
          onBytes: (bytes) => {
            job.bytes = bytes;
          },
          onUntarred: (tarBytes) => this.emit('untarred', { ...job.event, tarBytes }),
        },
      );
      this.#failures.delete(job.event.digest);
      return this.#finish(job, {
        succeeded: true,
        hasMismatchedHash: false,
        errorReason: '',
        errorCode: '',
        bytes: fetched.bytes,
        seconds: seconds(),
        alreadyPresent: false,
      });
    } catch (err) {
      const outcome = failed(signal.aborted ? abortError(signal) : err, job.bytes, seconds());
      this.#failures.delete(job.event.digest);
      this.#failures.set(job.event.digest, { outcome, size: job.size });
      if (this.#failures.size > MAX_REMEMBERED_FAILURES) {
        this.#failures.delete(this.#failures.keys().next().value!);
      }
      return this.#finish(job, outcome);
    }
  }

  #finish(job: Job, outcome: DownloadOutcome): DownloadOutcome {
    this.emit('finished', { ...job.event, outcome });
    return outcome;
  }
}

function present(): DownloadOutcome {
  return {
    succeeded: true,
    hasMismatchedHash: false,
    errorReason: '',
    errorCode: '',
    bytes: 0,
    seconds: 0,
    alreadyPresent: true,
  };
}

function failed(err: unknown, bytes: number, seconds: number): DownloadOutcome {
  return {
    succeeded: false,
    hasMismatchedHash: isGcfsError(err, ErrorCode.DigestMismatch),
    errorReason: describeError(err),
    errorCode: isGcfsError(err) ? err.code : ErrorCode.Internal,
    bytes,
    seconds,
    alreadyPresent: false,
  };
}
