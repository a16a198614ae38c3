// The images the FUSE tree serves and the state of their layers, with one owner. An image in
// use is in the images-in-use DB and under images/<name> (one symlink per layer); one no
// longer in use stays in the tree until GC collects it. Tree changes and collect() hold one
// lock, so GC never sees half an image. Each layer's life (attached, streamed, downloading,
// local, failed) is one state machine (layer-state.ts). registrar.ts drives registration,
// restore.ts the images brought back from the DB at start.

import { ErrorCode, imageDirName, isGcfsError, type Logger, SingleFlight } from '@gcfs/core';
import type { ImageRecord, ImagesInUse } from './images-in-use.js';
import { cachedLayerDir, isCachedLayer } from './layer-dirs.js';
import { type Availability, type LayerInfo, type LayerState, LayerStates } from './layer-state.js';
import { Mutex } from './mutex.js';
import type { PrefetchBlocks } from './prefetch.js';
import type { SessionPool } from './sessions.js';

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

export interface RegisteredImage {
  name: string;
  /** images/<dir>: relative to the mount point. */
  path: string;
  manifestDigest: string;
  layers: Array<{ digest: string; local: boolean }>;
  registeredAt: number;
}

/** What GC removed (or, before it is applied, found unused). */
export interface Unused {
  images: string[];
  layers: string[];
}

export interface ServedImagesOptions {
  tree: ImageTree;
  /** Sessions of collected images are closed. */
  sessions: Pick<SessionPool, 'delete'>;
  db: ImagesInUse;
  cacheDir: string;
  logger: Logger;
  /** Every layer state transition (`to` undefined: GC removed it), for metrics. */
  onLayerTransition?: (from: LayerState | undefined, to: LayerState | undefined) => void;
}

export class ServedImages {
  readonly #o: ServedImagesOptions;
  /** Images in the tree, in use or not (GC removes those that are not). */
  readonly #images = new Map<string, { record: ImageRecord; inUse: boolean }>();
  readonly #layers: LayerStates;
  /** Layers whose index is being loaded from cfsd (for layers/<digest>). */
  readonly #indexing = new SingleFlight<string, void>();
  /** Held by tree changes and by collect(), so GC never sees half an image. */
  readonly #lock = new Mutex();

  constructor(options: ServedImagesOptions) {
    this.#o = options;
    this.#layers = new LayerStates({ logger: options.logger, onTransition: options.onLayerTransition });
  }

  /** Record the image in use in the DB and put it in the tree. */
  add(record: ImageRecord): Promise<void> {
    return this.#lock.run(async () => {
      await this.#o.db.put(record);
      await this.#attach(record);
    });
  }

  /** Put the DB's images back in the tree (unreadable records are skipped); returns them. */
  async restore(): Promise<ImageRecord[]> {
    const { images, invalid } = this.#o.db.list();
    for (const key of invalid) this.#o.logger.warn('Ignoring an unreadable images-in-use record', { key });
    await this.#lock.run(async () => {
      for (const record of images) await this.#attach(record);
    });
    return images;
  }

  /** Mark the image unused (GC removes it from the tree); false when it was not in use. */
  remove(name: string): Promise<boolean> {
    return this.#lock.run(async () => {
      const removed = await this.#o.db.remove(name);
      const entry = this.#images.get(name);
      if (entry === undefined || !entry.inUse) return removed;
      entry.inUse = false;
      return true;
    });
  }

  /** True when the image is in the tree, in use or not. */
  has(name: string): boolean {
    return this.#images.has(name);
  }

  /** The image's record when it is in use. */
  inUseRecord(name: string): ImageRecord | undefined {
    const entry = this.#images.get(name);
    return entry?.inUse ? entry.record : undefined;
  }

  /**
   * Claim the image's layers while `registration` runs: GC keeps its hands off them
   * meanwhile, and collects what a failed registration added to layers/.
   */
  async claimLayers<T>(record: ImageRecord, registration: () => Promise<T>): Promise<T> {
    for (const { digest } of record.layers) this.#layers.attach(digest, { image: record.name }, true);
    try {
      return await registration();
    } finally {
      for (const { digest } of record.layers) this.#layers.release(digest);
    }
  }

  /**
   * Put each of `digests` (default: the image's layers) under layers/, asking cfsd for its
   * table of contents and waiting while cfsd indexes it. A layer cfsd cannot index is marked
   * so (it is served once downloaded); a local one is left alone.
   */
  async indexLayers(
    record: ImageRecord,
    digests = record.layers.map((layer) => layer.digest),
  ): Promise<void> {
    // All layers' tables at once (one round trip, not one per layer), each asked for once.
    await Promise.all(
      digests.map((digest) => {
        const progress = this.#layers.indexProgress(digest);
        if (progress === 'loaded' || progress === 'failed' || this.#layers.state(digest) === 'local') {
          return undefined;
        }
        return this.#indexing.run(digest, async () => {
          try {
            await this.#o.tree.addLayer(digest);
          } catch (err) {
            if (isGcfsError(err, ErrorCode.NotStreamable)) {
              this.#layers.markIndexProgress(digest, { failed: err.message });
              return;
            }
            if (isGcfsError(err, ErrorCode.LayerIndexing)) this.#layers.markIndexProgress(digest, 'indexing');
            throw err;
          }
          // GC removed the layer while cfsd answered: out of the tree again.
          if (!this.#layers.markIndexed(digest)) this.#o.tree.removeLayer(digest);
        });
      }),
    );
  }

  /** cfsd said it is indexing these layers: mounts wait for them rather than give up. */
  markIndexing(digests: readonly string[]): void {
    for (const digest of digests) this.#layers.markIndexProgress(digest, 'indexing');
  }

  /** Serve the layer from `dir`, its download done or found in the cache dir. */
  useLocal(digest: string, dir: string): void {
    // A layer GC removed while its download ran is not served again.
    if (
      this.#layers.transition(digest, ['attached', 'streamed', 'downloading', 'failed'], 'local', { dir })
    ) {
      this.#o.tree.useLocalLayer(digest, dir);
    }
  }

  /** Mark the layer downloading unless it is local or on its way (a failed one again); true when marked. */
  startDownload(digest: string, image: string): boolean {
    return this.#layers.transition(digest, ['attached', 'streamed', 'failed'], 'downloading', { image });
  }

  /** Its download stopped because its index came first: streamed until downloaded later. */
  downloadYielded(digest: string): boolean {
    return this.#layers.transition(digest, ['downloading'], 'streamed', {
      reason: 'its index came first; downloaded again after a pause in reads',
    });
  }

  /** True when layers/<digest> is served from cfsd's index. */
  indexLoaded(digest: string): boolean {
    return this.#layers.indexProgress(digest) === 'loaded';
  }

  /** Its download was given up: it stays streamed from cfsd. */
  downloadFailed(digest: string, fields: Record<string, unknown>): void {
    this.#layers.transition(digest, ['downloading'], 'failed', fields);
  }

  /** True when the layer is here and read from cfsd (not local). */
  streamed(digest: string): boolean {
    const state = this.#layers.state(digest);
    return state !== undefined && state !== 'local';
  }

  /** The image when it is in use. */
  describe(name: string): RegisteredImage | undefined {
    const record = this.inUseRecord(name);
    if (record === undefined) return undefined;
    return {
      name,
      path: `images/${imageDirName(name)}`,
      manifestDigest: record.manifestDigest,
      layers: record.layers.map(({ digest }) => ({ digest, local: this.#layers.state(digest) === 'local' })),
      registeredAt: record.registeredAt,
    };
  }

  list(): RegisteredImage[] {
    return [...this.#images.keys()].flatMap((name) => this.describe(name) ?? []);
  }

  /** Whether layer `index` of the image in use `name` can be read (see LayerStates.availability). */
  layerAvailability(name: string, index: number): Availability {
    const digest = this.inUseRecord(name)?.layers[index]?.digest;
    return digest === undefined ? 'unknown' : this.#layers.availability(digest);
  }

  /** Why cfsd cannot index layer `index` of the image in use `name`, when it cannot. */
  layerIndexFailure(name: string, index: number): string | undefined {
    const digest = this.inUseRecord(name)?.layers[index]?.digest;
    return digest === undefined ? undefined : this.#layers.indexFailure(digest);
  }

  /** Where a layer stands on this node (undefined: not here). */
  layerState(digest: string): LayerState | undefined {
    return this.#layers.state(digest);
  }

  /** Every layer the node knows, with its compressed size and the images in the tree naming it. */
  layers(): Array<LayerInfo & { size: number; images: string[] }> {
    const named = new Map<string, { size: number; images: string[] }>();
    for (const [name, { record }] of this.#images) {
      for (const { digest, size } of record.layers) {
        const entry = named.get(digest) ?? { size, images: [] };
        entry.images.push(name);
        named.set(digest, entry);
      }
    }
    return this.#layers
      .list()
      .map((layer) => ({ ...layer, size: 0, images: [], ...named.get(layer.digest) }));
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
   * GC's one call, under the lock that tree changes hold: take the images no longer in use
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

  /** The image's symlinks, to local layers where they are in the cache dir already. */
  async #attach(record: ImageRecord): Promise<void> {
    for (const { digest } of record.layers) {
      this.#layers.attach(digest, { image: record.name });
      if (this.#layers.state(digest) !== 'local' && (await isCachedLayer(this.#o.cacheDir, digest))) {
        this.useLocal(digest, cachedLayerDir(this.#o.cacheDir, digest));
      }
    }
    this.#o.tree.setImage(
      record.name,
      record.layers.map((layer) => layer.digest),
    );
    this.#images.set(record.name, { record, inUse: true });
  }
}
