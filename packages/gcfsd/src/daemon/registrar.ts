// Image registration: what makes images/<name>/<i> exist. An image is authorized with cfsd
// (with the node's pull secret), recorded in the images-in-use DB, put in the FUSE tree
// (one symlink per layer), its layers downloaded in the background and switched to local
// reads as they land, its blocks prefetched and its start-up reads recorded for cfsd's
// prefetch reports (prefetch.ts, read-reports.ts). At start the DB's images are put back in
// the tree at once, before cfsd answers, because snapshots already mounted use their paths.
// Each layer's life (attached, streamed, downloading, local, failed) is one state machine
// (layer-state.ts); GC asks collect() for what no image in use needs, under our lock.

import {
  type BackoffOptions,
  describeError,
  ErrorCode,
  GcfsError,
  imageDirName,
  type Logger,
  retryUntilStopped,
  SingleFlight,
} from '@gcfs/core';
import { parseReference } from '@gcfs/registry';
import type { ImageRecord, ImagesInUse } from './images-in-use.js';
import { cachedLayerDir, isCachedLayer } from './layer-dirs.js';
import {
  type DownloadResult,
  type LayerDownloader,
  LayerDownloads,
  type PullCredential,
} from './layer-downloads.js';
import { type LayerState, LayerStates } from './layer-state.js';
import { Mutex } from './mutex.js';
import { type PrefetchBlocks, prefetchImage } from './prefetch.js';
import type { ReadReporter } from './read-reports.js';
import type { SessionLike, SessionPool } from './sessions.js';

/** What registration needs of the FUSE tree (packages/fuse provides it; see fuse-tree.ts). */
export interface ImageTree {
  /** Serve `layers/<digest>`: its table of contents comes from cfsd (the session pool). */
  addLayer(digest: string): Promise<void>;
  /** Serve the layer from `dir`, and point every image symlink to it there (before addLayer too). */
  useLocalLayer(digest: string, dir: string): void;
  /** images/<dir of name>/<i> → layer i, local or streamed. Replaces an existing image. */
  setImage(name: string, layers: readonly string[]): void;
  removeImage(name: string): void;
  removeLayer(digest: string): void;
  /** Fetch blocks into the content cache; without it, prefetch reports are not used. */
  prefetch?: PrefetchBlocks;
}

/** cfsd's AuthImage (CfsdClient has it). */
export interface ImageAuthenticator {
  authImage(image: string, credentials: PullCredential, options: { wait: boolean }): Promise<SessionLike>;
}

/** Where an image's registry credential comes from (PullSecrets has it). */
export interface CredentialResolver {
  forImage(image: string): Promise<{ credential: PullCredential; origin: string }>;
}

export interface RegisteredImage {
  name: string;
  /** images/<dir>: relative to the mount point. */
  path: string;
  manifestDigest: string;
  layers: Array<{ digest: string; local: boolean }>;
  registeredAt: number;
}

export interface RegistrarOptions {
  cfsd: ImageAuthenticator;
  tree: ImageTree;
  sessions: SessionPool;
  db: ImagesInUse;
  secrets: CredentialResolver;
  downloader: LayerDownloader;
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

/** What GC removed (or, before it is applied, found unused). */
export interface Unused {
  images: string[];
  layers: string[];
}

/** The name an image is registered under: its normalized reference. */
export function imageName(image: string): string {
  return parseReference(image).toString();
}

export class Registrar {
  readonly #o: RegistrarOptions;
  readonly #downloads: LayerDownloads;
  /** Images in the tree, in use or not (GC removes those that are not). */
  readonly #images = new Map<string, { record: ImageRecord; inUse: boolean }>();
  readonly #layers: LayerStates;
  /** Layers whose index is being loaded from cfsd (for layers/<digest>). */
  readonly #indexing = new SingleFlight<string, void>();
  /** Held by a registration's tree changes and by collect(), so GC never sees half an image. */
  readonly #lock = new Mutex();
  readonly #stop = new AbortController();

  constructor(options: RegistrarOptions) {
    this.#o = options;
    this.#layers = new LayerStates({ logger: options.logger, onTransition: options.onLayerTransition });
    this.#downloads = new LayerDownloads({
      downloader: options.downloader,
      cacheDir: options.cacheDir,
      logger: options.logger,
      onLocal: (digest, dir) => this.#useLocal(digest, dir),
      onGiveUp: (digest, failure) =>
        this.#layers.transition(digest, ['downloading'], 'failed', {
          reason: failure.reason,
          error_code: failure.code,
          attempts: failure.attempts,
          next: 'stays streamed from cfsd; downloaded again when an image naming it is registered again or gcfsd restarts',
        }),
      onResult: options.onDownload,
      backoff: options.downloadBackoff,
      maxFailedAttempts: options.maxFailedDownloads,
    });
  }

  /** Authorize `image` with cfsd, record it in use, put it in the tree, start its downloads. */
  async register(image: string, options: { credential?: PullCredential } = {}): Promise<RegisteredImage> {
    const name = imageName(image);
    const { logger } = this.#o;
    logger.info(`Received UpdateCreds request for image ${name}`);
    const credential = options.credential ?? (await this.#o.secrets.forImage(name)).credential;
    const session = await this.#o.cfsd.authImage(name, credential, { wait: true });
    if (!session.streamable) {
      session.close();
      throw new GcfsError(ErrorCode.NotStreamable, `image ${name} cannot be streamed`, {
        hint: 'pull it normally',
        details: { image: name },
      });
    }
    const record: ImageRecord = {
      name,
      manifestDigest: session.manifestDigest,
      layers: session.layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size })),
      registeredAt: Date.now(),
    };
    this.#o.sessions.set(
      name,
      session,
      record.layers.map((layer) => layer.digest),
    );
    // Claimed until the image is in the tree or the registration failed: GC keeps its hands
    // off them meanwhile, and collects what a failed registration added to layers/.
    for (const { digest } of record.layers) this.#layers.attach(digest, { image: name }, true);
    try {
      await this.#indexLayers(record);
      await this.#lock.run(async () => {
        await this.#o.db.put(record);
        await this.#attach(record);
      });
    } catch (err) {
      if (!this.#images.has(name)) this.#o.sessions.delete(name);
      throw err;
    } finally {
      for (const { digest } of record.layers) this.#layers.release(digest);
    }
    void this.#startDownloadsLater(record, credential);
    if (this.#o.prefetch) {
      // Registration comes just before the container starts: what it reads now is what
      // a prefetch report should hold.
      this.#o.prefetch.reads.watch(
        name,
        record.layers.map((layer) => layer.digest),
      );
      void this.#prefetch(name, session);
    }
    return this.#describe(name)!;
  }

  /** Mark the image unused (GC removes it from the tree); false when it was not in use. */
  async unregister(image: string): Promise<boolean> {
    const name = this.#images.has(image) ? image : imageName(image);
    return this.#lock.run(async () => {
      const removed = await this.#o.db.remove(name);
      const entry = this.#images.get(name);
      if (entry === undefined || !entry.inUse) return removed;
      entry.inUse = false;
      return true;
    });
  }

  /**
   * Put the DB's images back in the tree now, and authorize them with cfsd in the
   * background (retrying until it answers). Returns how many were restored.
   */
  async restore(): Promise<number> {
    const { images, invalid } = this.#o.db.list();
    for (const key of invalid) this.#o.logger.warn('Ignoring an unreadable images-in-use record', { key });
    await this.#lock.run(async () => {
      for (const record of images) await this.#attach(record);
    });
    for (const record of images) {
      void this.#secretFor(record.name).then((credential) => {
        this.#startDownloads(record, credential);
        return this.#authorizeInBackground(record.name, credential);
      });
    }
    return images.length;
  }

  list(): RegisteredImage[] {
    return [...this.#images.keys()].flatMap((name) => this.#describe(name) ?? []);
  }

  /** The image when it is in use and authorized with cfsd (no need to register it again). */
  streaming(name: string): RegisteredImage | undefined {
    return this.#o.sessions.get(name) === undefined ? undefined : this.#describe(name);
  }

  /** True when layer `index` of the image in use `name` can be read: local, or its index loaded. */
  layerServable(name: string, index: number): boolean {
    const entry = this.#images.get(name);
    const digest = entry?.inUse ? entry.record.layers[index]?.digest : undefined;
    return digest !== undefined && this.#layers.servable(digest);
  }

  /** Where a layer stands on this node (undefined: not here). */
  layerState(digest: string): LayerState | undefined {
    return this.#layers.state(digest);
  }

  /** Layers per state (a gauge). */
  layerCounts(): Record<LayerState, number> {
    return this.#layers.counts();
  }

  /** Images in use, and the layers they need. */
  inUse(): { images: Set<string>; layers: Set<string> } {
    const images = new Set<string>();
    const layers = new Set<string>();
    for (const [name, { record, inUse }] of this.#images) {
      if (!inUse) continue;
      images.add(name);
      for (const layer of record.layers) layers.add(layer.digest);
    }
    return { images, layers };
  }

  /**
   * GC's one call, under the lock that registrations hold: take the images no longer in use
   * and the layers none in use needs (known here or in `cached`, the cache dir's) out of the
   * tree, then let `removeDirs` delete their cache dirs before anything can use them again.
   */
  collect(cached: readonly string[], removeDirs: (unused: Unused) => Promise<void>): Promise<Unused> {
    return this.#lock.run(async () => {
      const inUse = this.inUse();
      const images = [...this.#images.keys()].filter((name) => !inUse.images.has(name));
      const layers = [...new Set([...this.#layers.digests(), ...cached])].filter(
        (digest) => !inUse.layers.has(digest) && !this.#layers.claimed(digest),
      );
      for (const name of images) {
        this.#o.tree.removeImage(name);
        this.#o.sessions.delete(name);
        this.#images.delete(name);
      }
      for (const digest of layers) {
        if (this.#layers.state(digest) === undefined) continue;
        this.#o.tree.removeLayer(digest);
        this.#layers.remove(digest, { reason: 'no image in use needs it' });
      }
      const unused = { images, layers };
      await removeDirs(unused);
      return unused;
    });
  }

  get downloadsInFlight(): number {
    return this.#downloads.inFlight;
  }

  close(): void {
    this.#stop.abort();
    this.#downloads.close();
  }

  /** Put each layer under layers/ (asks cfsd for its table of contents). */
  async #indexLayers(record: ImageRecord): Promise<void> {
    // All layers' tables at once (one round trip, not one per layer), each asked for once.
    await Promise.all(
      record.layers.map(({ digest }) => {
        if (this.#layers.indexed(digest)) return undefined;
        return this.#indexing.run(digest, async () => {
          await this.#o.tree.addLayer(digest);
          // GC removed the layer while cfsd answered: out of the tree again.
          if (!this.#layers.markIndexed(digest)) this.#o.tree.removeLayer(digest);
        });
      }),
    );
  }

  /** The image's symlinks, to local layers where they are in the cache dir already. */
  async #attach(record: ImageRecord): Promise<void> {
    for (const { digest } of record.layers) {
      this.#layers.attach(digest, { image: record.name });
      if (this.#layers.state(digest) !== 'local' && (await isCachedLayer(this.#o.cacheDir, digest))) {
        this.#useLocal(digest, cachedLayerDir(this.#o.cacheDir, digest));
      }
    }
    this.#o.tree.setImage(
      record.name,
      record.layers.map((layer) => layer.digest),
    );
    this.#images.set(record.name, { record, inUse: true });
  }

  #useLocal(digest: string, dir: string): void {
    // A layer GC removed while its download ran is not served again.
    if (
      this.#layers.transition(digest, ['attached', 'streamed', 'downloading', 'failed'], 'local', { dir })
    ) {
      this.#o.tree.useLocalLayer(digest, dir);
    }
  }

  /** Download the image's layers that are neither local nor on their way (a failed one again). */
  #startDownloads(record: ImageRecord, credential: PullCredential): void {
    for (const layer of record.layers) {
      const fields = { image: record.name };
      if (this.#layers.transition(layer.digest, ['attached', 'streamed', 'failed'], 'downloading', fields)) {
        void this.#downloads.start(record.name, layer, credential);
      }
    }
  }

  async #startDownloadsLater(record: ImageRecord, credential: PullCredential): Promise<void> {
    try {
      await this.#o.downloadsAfter?.(this.#stop.signal);
    } catch {
      return; // the daemon stops
    }
    // Unregistered (and maybe collected) meanwhile: nothing to download.
    if (this.#images.get(record.name)?.inUse === true) this.#startDownloads(record, credential);
  }

  async #secretFor(name: string): Promise<PullCredential> {
    try {
      return (await this.#o.secrets.forImage(name)).credential;
    } catch (err) {
      this.#o.logger.error('No credential for the image: trying anonymously', {
        image: name,
        error: describeError(err),
      });
      return {};
    }
  }

  async #authorizeInBackground(name: string, credential: PullCredential): Promise<void> {
    // Registered again meanwhile (a fresh session), or no longer used: nothing to do.
    const settled = () => this.#o.sessions.get(name) !== undefined || this.#images.get(name)?.inUse !== true;
    await retryUntilStopped(
      async (attempt) => {
        if (settled()) return true;
        try {
          const session = await this.#o.cfsd.authImage(name, credential, { wait: false });
          const entry = this.#images.get(name);
          if (entry === undefined || settled()) {
            session.close();
            return true;
          }
          // Its layers' tables come through this session: a failure below drops it and retries.
          this.#o.sessions.set(
            name,
            session,
            entry.record.layers.map((layer) => layer.digest),
          );
          await this.#indexLayers(entry.record);
          this.#o.logger.info('Restored image authorized with cfsd', { image: name, attempt });
          await this.#prefetch(name, session);
          return true;
        } catch (err) {
          this.#o.sessions.delete(name);
          this.#o.logger.warn('AuthImage of a restored image failed; retrying', {
            image: name,
            attempt,
            error: describeError(err),
          });
          return false;
        }
      },
      { backoff: this.#o.restoreBackoff ?? { initialMs: 1_000, maxMs: 60_000 }, signal: this.#stop.signal },
    );
  }

  async #prefetch(name: string, session: SessionLike): Promise<void> {
    const prefetch = this.#o.tree.prefetch?.bind(this.#o.tree);
    if (!this.#o.prefetch || prefetch === undefined) return;
    await prefetchImage(name, session, {
      prefetch,
      streamed: (layer) => {
        const state = this.#layers.state(layer);
        return state !== undefined && state !== 'local';
      },
      budgetBytes: this.#o.prefetch.budgetBytes,
      logger: this.#o.logger,
    });
  }

  #describe(name: string): RegisteredImage | undefined {
    const entry = this.#images.get(name);
    if (entry === undefined || !entry.inUse) return undefined;
    const { record } = entry;
    return {
      name,
      path: `images/${imageDirName(name)}`,
      manifestDigest: record.manifestDigest,
      layers: record.layers.map(({ digest }) => ({ digest, local: this.#layers.state(digest) === 'local' })),
      registeredAt: record.registeredAt,
    };
  }
}
