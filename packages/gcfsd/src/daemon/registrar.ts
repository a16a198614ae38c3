// Image registration: what makes images/<name>/<i> exist. An image is authorized with cfsd
// (with the node's pull secret), recorded in the images-in-use DB and put in the FUSE tree
// (served-images.ts), its layers downloaded in the background and switched to local reads
// as they land, its blocks prefetched and its start-up reads recorded for cfsd's prefetch
// reports (prefetch.ts, read-reports.ts). At start the DB's images are put back in the tree
// at once and authorized in the background (restore.ts). GC asks collect() for what no
// image in use needs.

import { type BackoffOptions, describeError, ErrorCode, GcfsError, type Logger, sleep } from '@gcfs/core';
import { parseReference } from '@gcfs/registry';
import type { ImageSizer } from './image-size.js';
import type { ImageRecord, ImagesInUse, LayerRecord } from './images-in-use.js';
import { loadIndexes } from './index-loads.js';
import {
  type DownloadResult,
  type LayerDownloader,
  LayerDownloads,
  type PullCredential,
} from './layer-downloads.js';
import { type Availability, type LayerInfo, type LayerState, PENDING_WAIT_MS } from './layer-state.js';
import { prefetchImage } from './prefetch.js';
import type { ReadReporter } from './read-reports.js';
import { restoreImages } from './restore.js';
import { type ImageTree, type RegisteredImage, ServedImages, type Unused } from './served-images.js';
import type { SessionLike, SessionPool } from './sessions.js';

/** cfsd's AuthImage (CfsdClient has it). */
export interface ImageAuthenticator {
  authImage(image: string, credentials: PullCredential, options: { wait: boolean }): Promise<SessionLike>;
}

/** Where an image's registry credential comes from (PullSecrets has it). */
export interface CredentialResolver {
  forImage(image: string): Promise<{ credential: PullCredential; origin: string }>;
}

export interface RegistrarOptions {
  /**
   * cfsd, or undefined when gcfsd has no content service (--addr empty): every registration
   * is then refused with ERR_NO_BACKEND, and restored images are served from their local copies.
   */
  cfsd: ImageAuthenticator | undefined;
  tree: ImageTree;
  sessions: SessionPool;
  db: ImagesInUse;
  secrets: CredentialResolver;
  downloader: LayerDownloader;
  /** Reads an image's size from its registry, so that a too small one skips cfsd altogether. */
  sizeImage?: ImageSizer;
  cacheDir: string;
  /**
   * --enable_prefetching: each registered image's prefetch report is loaded (up to
   * `budgetBytes`), and what it reads at start recorded by `reads` for cfsd.
   */
  prefetch: false | { budgetBytes: number; reads: ReadReporter };
  logger: Logger;
  onDownload?: (result: DownloadResult) => void;
  /** Every layer state transition (`to` undefined: GC removed it), for metrics. */
  onLayerTransition?: (from: LayerState | undefined, to: LayerState | undefined) => void;
  /**
   * Resolves when a newly registered image's downloads may start (after a pause in its
   * on-demand reads, see read-activity.ts); default at once. Restored images never wait.
   */
  downloadsAfter?: (signal: AbortSignal) => Promise<void>;
  /** Pace of AuthImage retries for images restored from the DB. */
  restoreBackoff?: BackoffOptions;
  /** Pace and patience of layer downloads (see layer-downloads.ts). */
  downloadBackoff?: BackoffOptions;
  maxFailedDownloads?: number;
}

export interface RegisterOptions {
  /** The registry credential to use (default: the node's, see CredentialResolver). */
  credential?: PullCredential;
  /** Wait until cfsd has indexed every layer before registering. */
  wait?: boolean;
  /** Images with fewer compressed bytes in all are refused with ERR_IMAGE_TOO_SMALL. */
  minImageBytes?: number;
}

const PULL_POLL_MS = 100;

function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** ERR_IMAGE_TOO_SMALL for an image of `bytes` compressed, if under `minBytes`. */
function tooSmall(name: string, bytes: number, minBytes: number): GcfsError | undefined {
  if (bytes >= minBytes) return undefined;
  return new GcfsError(
    ErrorCode.ImageTooSmall,
    `image ${name} is ${formatMiB(bytes)} compressed, under the ${formatMiB(minBytes)} streaming pays for`,
    {
      hint: 'a full pull of it is as fast; --min_streamed_image_size_mb sets the size',
      details: { image: name },
    },
  );
}

/** ERR_NO_BACKEND: why nothing is streamed by a gcfsd without --addr. */
export function noBackend(name: string): GcfsError {
  return new GcfsError(ErrorCode.NoBackend, 'gcfsd has no content service address (--addr)', {
    hint: "set --addr to cfsd's address to stream images",
    details: { image: name },
  });
}

/** The name an image is registered under: its normalized reference. */
export function imageName(image: string): string {
  return parseReference(image).toString();
}

export class Registrar {
  readonly #o: RegistrarOptions;
  readonly #images: ServedImages;
  readonly #downloads: LayerDownloads;
  readonly #stop = new AbortController();

  constructor(options: RegistrarOptions) {
    this.#o = options;
    this.#images = new ServedImages({
      tree: options.tree,
      sessions: options.sessions,
      db: options.db,
      cacheDir: options.cacheDir,
      logger: options.logger,
      onLayerTransition: options.onLayerTransition,
    });
    this.#downloads = new LayerDownloads({
      downloader: options.downloader,
      cacheDir: options.cacheDir,
      logger: options.logger,
      onLocal: (digest, dir) => this.#images.useLocal(digest, dir),
      onGiveUp: (digest, failure) =>
        this.#images.downloadFailed(digest, {
          reason: failure.reason,
          error_code: failure.code,
          attempts: failure.attempts,
          next: 'stays streamed from cfsd; downloaded again when an image naming it is registered again or gcfsd restarts',
        }),
      onYield: (image, layer, credential) => this.#downloadYielded(image, layer, credential),
      onResult: options.onDownload,
      backoff: options.downloadBackoff,
      maxFailedAttempts: options.maxFailedDownloads,
    });
  }

  /**
   * Authorize `image` with cfsd, record it in use, put it in the tree, start its downloads.
   * With `wait`, cfsd indexes every layer first (the admin socket's registration); without,
   * the layers cfsd has indexed are loaded now and the others are downloaded at once while
   * cfsd indexes them, each served from whichever comes first (a first pull).
   */
  async register(image: string, options: RegisterOptions = {}): Promise<RegisteredImage> {
    const name = imageName(image);
    const cfsd = this.#o.cfsd;
    // Before the credential and the registry's manifest: nothing of it would be used.
    if (cfsd === undefined) throw noBackend(name);
    const resolved = options.credential === undefined ? await this.#o.secrets.forImage(name) : undefined;
    const credential = options.credential ?? resolved!.credential;
    this.#o.logger.info(`Registering image ${name}`, { credential: resolved?.origin ?? 'caller' });
    const minBytes = options.minImageBytes ?? 0;
    if (minBytes > 0) await this.#refuseIfTooSmall(name, credential, minBytes);
    const session = await cfsd.authImage(name, credential, { wait: options.wait ?? false });
    if (!session.streamable) {
      session.close();
      throw new GcfsError(
        ErrorCode.NotStreamable,
        `image ${name} cannot be streamed: ${session.notStreamableReason}`,
        {
          hint: 'pull it normally',
          details: { image: name },
        },
      );
    }
    const small = tooSmall(
      name,
      session.layers.reduce((sum, layer) => sum + layer.size, 0),
      minBytes,
    );
    if (small) {
      session.close();
      throw small;
    }
    const record: ImageRecord = {
      name,
      manifestDigest: session.manifestDigest,
      layers: session.layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size })),
      registeredAt: Date.now(),
    };
    const indexed = session.indexedLayers;
    const indexing = record.layers.filter((layer) => !indexed.includes(layer.digest));
    this.#o.sessions.set(
      name,
      session,
      record.layers.map((layer) => layer.digest),
    );
    await this.#images.claimLayers(record, async () => {
      try {
        await this.#images.indexLayers(record, indexed);
        this.#images.markIndexing(indexing.map((layer) => layer.digest));
        await this.#images.add(record);
      } catch (err) {
        if (!this.#images.has(name)) this.#o.sessions.delete(name);
        throw err;
      }
    });
    if (indexing.length > 0) {
      // Not indexed yet: downloaded now, as a full pull would, and streamed if cfsd is faster.
      this.#startDownloads(record, credential, indexing);
      void loadIndexes(record, indexing, {
        images: this.#images,
        sessions: this.#o.sessions,
        logger: this.#o.logger,
        // The index won: its download gives the link back to the starting container.
        onLoaded: (digest) => {
          if (this.#images.indexLoaded(digest)) this.#downloads.yieldTo(digest);
        },
        signal: this.#stop.signal,
      });
    }
    void this.#startDownloadsLater(
      record,
      credential,
      record.layers.filter((layer) => indexed.includes(layer.digest)),
    );
    if (this.#o.prefetch) {
      // Registration comes just before the container starts: what it reads now is what
      // a prefetch report should hold.
      this.#o.prefetch.reads.watch(
        name,
        record.layers.map((layer) => layer.digest),
      );
      void this.#prefetch(name, session);
    }
    return this.#images.describe(name)!;
  }

  /** Mark the image unused (GC removes it from the tree); false when it was not in use. */
  unregister(image: string): Promise<boolean> {
    return this.#images.remove(this.#images.has(image) ? image : imageName(image));
  }

  /**
   * Put the DB's images back in the tree now, and authorize them with cfsd in the
   * background (retrying until it answers). Returns how many were restored.
   */
  restore(): Promise<number> {
    return restoreImages({
      images: this.#images,
      sessions: this.#o.sessions,
      cfsd: this.#o.cfsd,
      secrets: this.#o.secrets,
      startDownloads: (record, credential) => this.#startDownloads(record, credential),
      prefetch: (name, session) => this.#prefetch(name, session),
      logger: this.#o.logger,
      backoff: this.#o.restoreBackoff,
      signal: this.#stop.signal,
    });
  }

  list(): RegisteredImage[] {
    return this.#images.list();
  }

  /** The image when it is in use and authorized with cfsd (no need to register it again). */
  streaming(name: string): RegisteredImage | undefined {
    return this.#o.sessions.get(name) === undefined ? undefined : this.#images.describe(name);
  }

  /** Whether layer `index` of the image in use `name` can be read (see LayerStates.availability). */
  layerAvailability(name: string, index: number): Availability {
    return this.#images.layerAvailability(name, index);
  }

  /** Why cfsd cannot index layer `index` of the image in use `name`, when it cannot. */
  layerIndexFailure(name: string, index: number): string | undefined {
    return this.#images.layerIndexFailure(name, index);
  }

  /** Where a layer stands on this node (undefined: not here). */
  layerState(digest: string): LayerState | undefined {
    return this.#images.layerState(digest);
  }

  /** Every layer the node knows, with its size and the images naming it (see ServedImages.layers). */
  layers(): Array<LayerInfo & { size: number; images: string[] }> {
    return this.#images.layers();
  }

  /** Layers per state (a gauge). */
  layerCounts(): Record<LayerState, number> {
    return this.#images.layerCounts();
  }

  /** Images in use, and the layers they need. */
  inUse(): { images: Set<string>; layers: Set<string> } {
    return this.#images.inUse();
  }

  /** GC's one call (see ServedImages.collect). */
  collect(cached: readonly string[], removeDirs: (unused: Unused) => Promise<void>): Promise<Unused> {
    return this.#images.collect(cached, removeDirs);
  }

  get downloadsInFlight(): number {
    return this.#downloads.inFlight;
  }

  close(): void {
    this.#stop.abort();
    this.#downloads.close();
  }

  /** ERR_IMAGE_TOO_SMALL from the registry's manifest; cfsd decides when the registry cannot be read here. */
  async #refuseIfTooSmall(name: string, credential: PullCredential, minBytes: number): Promise<void> {
    if (!this.#o.sizeImage) return;
    let bytes: number;
    try {
      bytes = await this.#o.sizeImage(name, credential);
    } catch (err) {
      this.#o.logger.debug('Could not read the image size from its registry: cfsd will tell', {
        image: name,
        error: describeError(err),
      });
      return;
    }
    const small = tooSmall(name, bytes, minBytes);
    if (small) throw small;
  }

  /** Download the image's `layers` that are neither local nor on their way (a failed one again). */
  #startDownloads(
    record: ImageRecord,
    credential: PullCredential,
    layers: readonly LayerRecord[] = record.layers,
  ): void {
    for (const layer of layers) {
      if (this.#images.startDownload(layer.digest, record.name)) {
        void this.#downloads.start(record.name, layer, credential);
      }
    }
  }

  /** A first pull's early download gave way to the layer's index: downloaded after a pause. */
  #downloadYielded(image: string, layer: LayerRecord, credential: PullCredential): void {
    const record = this.#images.inUseRecord(image);
    if (this.#images.downloadYielded(layer.digest) && record !== undefined) {
      void this.#startDownloadsLater(record, credential, [layer]);
    }
  }

  /**
   * Resolves once no layer of the image is on its way any more (cfsd indexing it, its early
   * download), i.e. once its pull can finish. The quiet period of downloadsAfter only means
   * something from then on: before, the container has not started, so no read can say it is
   * still starting, and a download begun then would compete with its whole start.
   */
  async #untilPulled(record: ImageRecord, signal: AbortSignal): Promise<void> {
    // No longer than a mount waits for the same layers.
    const deadline = Date.now() + PENDING_WAIT_MS;
    while (this.#pulling(record) && Date.now() < deadline) await sleep(PULL_POLL_MS, signal);
  }

  #pulling(record: ImageRecord): boolean {
    return record.layers.some((_, index) => this.#images.layerAvailability(record.name, index) === 'pending');
  }

  async #startDownloadsLater(
    record: ImageRecord,
    credential: PullCredential,
    layers: readonly LayerRecord[],
  ): Promise<void> {
    try {
      if (this.#pulling(record)) await this.#untilPulled(record, this.#stop.signal);
      await this.#o.downloadsAfter?.(this.#stop.signal);
    } catch {
      return; // the daemon stops
    }
    // Unregistered (and maybe collected) meanwhile: nothing to download.
    if (this.#images.inUseRecord(record.name) !== undefined) this.#startDownloads(record, credential, layers);
  }

  async #prefetch(name: string, session: SessionLike): Promise<void> {
    const prefetch = this.#o.tree.prefetch?.bind(this.#o.tree);
    if (!this.#o.prefetch || prefetch === undefined) return;
    await prefetchImage(name, session, {
      prefetch,
      streamed: (layer) => this.#images.streamed(layer),
      budgetBytes: this.#o.prefetch.budgetBytes,
      logger: this.#o.logger,
    });
  }
}
