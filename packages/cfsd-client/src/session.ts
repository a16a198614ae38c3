// An image session: the token cfsd issued for one image, kept fresh (on a period and
// before it expires, and once more when cfsd refuses it), and the content calls made
// with it.

import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { type BackoffOptions, backoffDelay, ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import { containerfs } from '@gcfs/proto';
import { status } from '@grpc/grpc-js';
import { type DecodedBlock, decodeBlocks } from './blocks.js';
import type { CfsdClientEvents, ReauthEvent } from './events.js';
import type { CfsdRpc } from './rpc.js';
import { callError, grpcStatusOf } from './status.js';

/** Registry credentials for the image's registry; omitted fields mean anonymous. */
export type RegistryCredentials = Partial<containerfs.RegistryCredentials>;

export interface SessionOptions {
  /** Period of token refreshes in ms; 0 refreshes only before the token expires. */
  authRefreshPeriodMs: number;
  /** Pace of refresh attempts after a failed refresh. */
  refreshBackoff: BackoffOptions;
  /** Called once by close(). */
  onClose?: () => void;
}

export interface LayerIndex {
  header: containerfs.LayerIndexHeader;
  entries: containerfs.TocEntry[];
}

export interface CallOptions {
  signal?: AbortSignal;
}

// setTimeout fires at once for delays above 2^31-1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ImageSession {
  readonly #rpc: CfsdRpc;
  readonly #events: EventEmitter<CfsdClientEvents>;
  readonly #options: SessionOptions;
  readonly #request: containerfs.AuthImageRequest;
  #response: containerfs.AuthImageResponse;
  #reauthing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshFailures = 0;
  #closed = false;

  /** Made by CfsdClient.authImage. */
  constructor(
    rpc: CfsdRpc,
    events: EventEmitter<CfsdClientEvents>,
    options: SessionOptions,
    request: containerfs.AuthImageRequest,
    response: containerfs.AuthImageResponse,
  ) {
    this.#rpc = rpc;
    this.#events = events;
    this.#options = options;
    // Re-authentication never waits for indexing: it only renews the token.
    this.#request = { ...request, wait: false };
    this.#response = response;
    registerSecret(response.sessionToken);
    this.#schedule(this.#nextRefreshMs());
  }

  /** The reference as asked for. */
  get image(): string {
    return this.#request.image;
  }
  /** The reference as cfsd normalized it. */
  get reference(): string {
    return this.#response.image;
  }
  get manifestDigest(): string {
    return this.#response.manifestDigest;
  }
  get status(): containerfs.ImageStatus {
    return this.#response.status;
  }
  get streamable(): boolean {
    return this.#response.status !== containerfs.ImageStatus.IMAGE_STATUS_NOT_STREAMABLE;
  }
  get notStreamableReason(): string {
    return this.#response.notStreamableReason;
  }
  get layers(): readonly containerfs.Layer[] {
    return this.#response.layers;
  }
  get expiresAtUnixMs(): number {
    return this.#response.expiresAtUnixMs;
  }
  /** The current token (registered as a secret: it never shows in errors or logs). */
  get token(): string {
    return this.#response.sessionToken;
  }

  /** Digests of the layers cfsd had indexed when it last answered AuthImage. */
  get indexedLayers(): string[] {
    return this.#response.layers
      .filter((layer) => layer.status === containerfs.LayerStatus.LAYER_STATUS_READY)
      .map((layer) => layer.digest);
  }

  layer(digest: string): containerfs.Layer | undefined {
    return this.#response.layers.find((layer) => layer.digest === digest);
  }

  /** Renew the token now (and learn the image's current status); concurrent callers share one AuthImage. */
  refresh(): Promise<void> {
    return this.#reauth('refresh');
  }

  /**
   * The layer's table of contents: its header and every entry in tar order. With `wait`, a
   * layer cfsd is still indexing is answered once it is (ERR_LAYER_INDEXING after the
   * call's deadline; ERR_NOT_STREAMABLE when it cannot be indexed).
   */
  async layerIndex(layerDigest: string, options: CallOptions & { wait?: boolean } = {}): Promise<LayerIndex> {
    const wait = options.wait ?? false;
    const chunks = await this.#authorized((sessionToken) =>
      this.#rpc.getLayerIndex({ sessionToken, layerDigest, wait }, options.signal),
    );
    const header = chunks[0]?.header;
    const entries = chunks.flatMap((chunk) => chunk.entries);
    if (header === undefined || header.entryCount !== entries.length) {
      throw new GcfsError(ErrorCode.BackendError, `cfsd sent an incomplete index of layer ${layerDigest}`, {
        details: { layer: layerDigest, expected: header?.entryCount, received: entries.length },
      });
    }
    return { header, entries };
  }

  /**
   * Up to `count` blocks from `first`, verified and decoded. cfsd may return fewer
   * (layer end, its own maximum); BlockFetcher asks again for the rest.
   */
  async readBlocks(layerDigest: string, first: number, count: number, options: CallOptions = {}) {
    const started = performance.now();
    const response = await this.#authorized((sessionToken) =>
      this.#rpc.readBlocks({ sessionToken, layerDigest, firstBlock: first, count }, options.signal),
    );
    const blocks: DecodedBlock[] = await decodeBlocks(layerDigest, first, response.blocks);
    const bytes = blocks.reduce((sum, block) => sum + block.data.length, 0);
    const ms = performance.now() - started;
    this.#events.emit('blockFetch', { layer: layerDigest, first, count: blocks.length, bytes, ms });
    return blocks;
  }

  /** The image's prefetch report, or undefined while no node has reported reads. */
  async prefetchReport(options: CallOptions = {}): Promise<containerfs.PrefetchImageReport | undefined> {
    try {
      return await this.#authorized((sessionToken) =>
        this.#rpc.getPrefetchImageReport({ sessionToken }, options.signal),
      );
    } catch (err) {
      if (grpcStatusOf(err) === status.FAILED_PRECONDITION) return undefined;
      throw err;
    }
  }

  /** Tell cfsd what a container of this image read while starting. */
  async reportReads(reads: containerfs.FileRead[], options: CallOptions = {}): Promise<void> {
    await this.#authorized((sessionToken) =>
      this.#rpc.reportImageReads({ sessionToken, reads }, options.signal),
    );
  }

  /** Stop refreshing; later calls fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#options.onClose?.();
  }

  /** Run a content call with the token; when cfsd refuses it, re-authenticate once and run it again. */
  async #authorized<T>(run: (token: string) => Promise<T>): Promise<T> {
    this.#assertOpen();
    const token = this.token;
    try {
      return await run(token);
    } catch (err) {
      if (grpcStatusOf(err) !== status.UNAUTHENTICATED) throw err;
      // Another call may already have renewed the token this one was refused with.
      if (this.token === token) await this.#reauth('unauthenticated');
      return await run(this.token);
    }
  }

  #reauth(reason: ReauthEvent['reason']): Promise<void> {
    this.#reauthing ??= this.#authImage(reason).finally(() => {
      this.#reauthing = undefined;
    });
    return this.#reauthing;
  }

  async #authImage(reason: ReauthEvent['reason']): Promise<void> {
    this.#assertOpen();
    try {
      const response = await this.#rpc.authImage(this.#request);
      registerSecret(response.sessionToken);
      this.#response = response;
      this.#refreshFailures = 0;
      this.#events.emit('reauth', { image: this.image, reason, ok: true });
    } catch (err) {
      const error = callError('authImage', err);
      this.#refreshFailures++;
      this.#events.emit('reauth', { image: this.image, reason, ok: false, error });
      throw error;
    } finally {
      this.#schedule(this.#nextRefreshMs());
    }
  }

  /** The period, but early enough that a refresh lands before the token expires. */
  #nextRefreshMs(): number {
    if (this.#refreshFailures > 0) return backoffDelay(this.#refreshFailures, this.#options.refreshBackoff);
    const period = this.#options.authRefreshPeriodMs > 0 ? this.#options.authRefreshPeriodMs : Infinity;
    const expiresAt = this.#response.expiresAtUnixMs;
    // Refresh once 80% of the remaining lifetime is gone, leaving room for a slow AuthImage;
    // never in a tight loop, even when cfsd's clock says the token is already stale.
    const beforeExpiry = expiresAt > 0 ? (expiresAt - Date.now()) * 0.8 : Infinity;
    return Math.max(this.#options.refreshBackoff.initialMs, Math.min(period, beforeExpiry));
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || !Number.isFinite(delayMs)) return;
    this.#timer = setTimeout(
      () => {
        // Failures are reported as reauth events and retried on the refresh backoff.
        this.#reauth('refresh').catch(() => {});
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    // A session must not keep gcfsd (or a test) alive on its own.
    this.#timer.unref();
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new GcfsError(ErrorCode.Aborted, `the session of image ${this.image} is closed`);
    }
  }
}
