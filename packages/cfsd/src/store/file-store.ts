import diagnosticsChannel from 'node:diagnostics_channel';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Digest,
  digestAlgorithm,
  ErrorCode,
  ensurePrivateDir,
  GcfsError,
  isDigest,
  syncDir,
  writeDurable,
} from '@gcfs/core';
import { clampRange, layerNotFound, recordsFromLengths, totalLength } from './blocks.js';
import {
  ALGORITHMS,
  BLOCKS,
  CorruptLayer,
  checkSizes,
  createPrivate,
  FileLayout,
  INDEX,
  mkdirPrivate,
  readChecked,
  readExactly,
  readManifest,
  TABLE,
} from './file-layout.js';
import { recoverSwaps, swapLayerDir } from './file-swap.js';
import { FileWriter } from './file-writer.js';
import type { BeginOptions, LayerFailure, LayerStore, LayerWriter, StoredLayer } from './layer-store.js';
import { type OpenLayer, OpenLayers } from './open-layers.js';

/** diagnostics_channel on which a file store reports each damaged layer it drops. */
export const STORE_CORRUPT_CHANNEL = 'gcfs:cfsd:store:corrupt';
export interface StoreCorruptEvent {
  root: string;
  digest: Digest;
  reason: string;
}
const corruptChannel = diagnosticsChannel.channel(STORE_CORRUPT_CHANNEL);

export interface FileStoreOptions {
  /** How many layers keep their metadata loaded and their blocks file open (default 64). */
  openLayers?: number;
}

/**
 * The embedded LayerStore: one directory per layer (see file-layout.ts), crash-safe commits
 * (write in tmp/, fsync, rename into place, fsync the parent), damaged layers dropped at open
 * or when a read finds them cut short. One process owns DIR at a time (DIR/lock).
 *
 * Two writers of one digest: both may write; the first commit installs the layer, the second
 * finds it present and discards its own copy, unless it was begun to replace (file-swap.ts).
 */
export class FileStore implements LayerStore {
  readonly root: string;
  readonly #layout: FileLayout;
  readonly #failures: Map<Digest, LayerFailure>;
  readonly #open: OpenLayers;
  /** Changes of a layer's directory under way (swaps, deletes), by digest: see #exclusive. */
  readonly #changes = new Map<Digest, Promise<void>>();
  /** Layers between the two renames of a swap (see file-swap.ts): stored, in no directory. */
  readonly #swapping = new Set<Digest>();
  #closed = false;

  private constructor(layout: FileLayout, failures: Map<Digest, LayerFailure>, options: FileStoreOptions) {
    this.root = layout.root;
    this.#layout = layout;
    this.#failures = failures;
    this.#open = new OpenLayers(options.openLayers ?? 64, (digest) => this.#load(digest));
  }

  /** Open (creating if needed) the store in `dir`, cleaning up after any crash. */
  static async open(dir: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const layout = new FileLayout(dir);
    await ensurePrivateDir(dir);
    await layout.lock();
    try {
      await layout.create();
      await recoverSwaps(layout);
      for (const name of await readdir(layout.tmp)) {
        await rm(join(layout.tmp, name), { recursive: true, force: true });
      }
      const store = new FileStore(layout, await loadFailures(layout), options);
      await store.#checkLayers();
      return store;
    } catch (err) {
      await layout.unlock();
      throw err;
    }
  }

  async get(digest: Digest): Promise<StoredLayer | undefined> {
    this.#assertOpen();
    if (this.#failures.has(digest)) return undefined;
    await this.#afterChanges(digest);
    return this.#open.use(digest, async (open) => open.layer);
  }

  async readBlocks(digest: Digest, first: number, count: number): Promise<Buffer[]> {
    this.#assertOpen();
    if (this.#failures.has(digest)) throw layerNotFound(digest);
    let blocks: Buffer[] | undefined;
    await this.#afterChanges(digest);
    try {
      blocks = await this.#open.use(digest, (open) => readRange(open, first, count));
    } catch (err) {
      if (err instanceof CorruptLayer) await this.#drop(digest, err.message);
      throw err;
    }
    if (blocks === undefined) throw layerNotFound(digest);
    return blocks;
  }

  async failure(digest: Digest): Promise<LayerFailure | undefined> {
    this.#assertOpen();
    return this.#failures.get(digest);
  }

  async markFailed(digest: Digest, reason: string): Promise<void> {
    this.#assertOpen();
    const failure = { reason, at: Date.now() };
    const temp = this.#layout.tempPath('.json');
    const path = this.#layout.failurePath(digest);
    await writeDurable(temp, JSON.stringify(failure));
    await rename(temp, path);
    await syncDir(join(path, '..'));
    this.#failures.set(digest, failure);
    await this.delete(digest);
  }

  async clearFailure(digest: Digest): Promise<void> {
    this.#assertOpen();
    const path = this.#layout.failurePath(digest);
    await rm(path, { force: true });
    await syncDir(join(path, '..'));
    this.#failures.delete(digest);
  }

  async begin(digest: Digest, options: BeginOptions = {}): Promise<LayerWriter> {
    this.#assertOpen();
    const dir = this.#layout.tempPath();
    await mkdirPrivate(dir);
    try {
      const blocks = await createPrivate(join(dir, BLOCKS));
      const install = options.replace
        ? (temp: string) => this.#replace(digest, temp)
        : (temp: string) => this.#install(digest, temp);
      return new FileWriter(digest, dir, blocks, install);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async delete(digest: Digest): Promise<void> {
    this.#assertOpen();
    // After any swap of the digest, never between its renames: a replace brings nothing back.
    await this.#exclusive(digest, async () => {
      this.#open.evict(digest);
      await this.#layout.removeDir(this.#layout.layerDir(digest));
      this.#open.evict(digest); // a load that raced with the removal
    });
  }

  async list(): Promise<Digest[]> {
    this.#assertOpen();
    const digests: Digest[] = [];
    for (const algorithm of ALGORITHMS) {
      for (const name of await readdir(this.#layout.layersDir(algorithm))) {
        const digest = `${algorithm}:${name}`;
        if (isDigest(digest) && !this.#failures.has(digest)) digests.push(digest);
      }
    }
    // A layer amid a swap is briefly in no directory: it is still stored.
    for (const digest of this.#swapping) if (!digests.includes(digest)) digests.push(digest);
    return digests;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#open.clear();
    await this.#layout.unlock();
  }

  async #install(digest: Digest, temp: string): Promise<void> {
    const target = this.#layout.layerDir(digest);
    try {
      await rename(temp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(temp, { recursive: true, force: true }); // present already: the first commit won
      return;
    }
    await syncDir(this.#layout.layersDir(digestAlgorithm(digest)));
  }

  /**
   * Swap in a new copy of a layer. Its readers in this process wait for the swap (they would
   * find the directory absent or, loading across it, half of each copy); readers holding the
   * old copy open finish on it.
   */
  #replace(digest: Digest, temp: string): Promise<void> {
    return this.#exclusive(digest, async () => {
      await this.#open.settle(digest);
      this.#swapping.add(digest);
      try {
        await swapLayerDir(this.#layout, temp, this.#layout.layerDir(digest));
      } finally {
        this.#swapping.delete(digest);
      }
      this.#open.evict(digest);
    });
  }

  /** Run `change` of a layer's directory after the changes of it under way: swaps and deletes. */
  async #exclusive(digest: Digest, change: () => Promise<void>): Promise<void> {
    const run = (this.#changes.get(digest) ?? Promise.resolve()).then(change);
    const settled = run.catch(() => {});
    this.#changes.set(digest, settled);
    try {
      await run;
    } finally {
      if (this.#changes.get(digest) === settled) this.#changes.delete(digest);
    }
  }

  /** Resolves with no change of `digest` (swap, delete) under way; the caller then uses it without awaiting. */
  async #afterChanges(digest: Digest): Promise<void> {
    for (let change = this.#changes.get(digest); change !== undefined; change = this.#changes.get(digest))
      await change;
  }

  async #load(digest: Digest): Promise<OpenLayer | undefined> {
    const dir = this.#layout.layerDir(digest);
    try {
      const manifest = await readManifest(dir, digest);
      if (manifest === undefined) return undefined;
      const index = await readChecked(dir, INDEX, manifest.indexSha256, digest);
      const table = await readChecked(dir, TABLE, manifest.tableSha256, digest);
      const lengths = Array.from({ length: table.length / 4 }, (_, i) => table.readUInt32LE(i * 4));
      const records = recordsFromLengths(lengths);
      if (totalLength(records) !== manifest.blocksSize) {
        throw new CorruptLayer(digest, `block table sums to ${totalLength(records)} bytes`);
      }
      const blocks = await open(join(dir, BLOCKS), 'r');
      const size = (await blocks.stat().catch(() => undefined))?.size;
      if (size !== manifest.blocksSize) {
        await blocks.close();
        throw new CorruptLayer(digest, `blocks has ${size} bytes, manifest says ${manifest.blocksSize}`);
      }
      const layer = { digest, index, blocks: records, createdAt: manifest.createdAt };
      return { layer, blocks };
    } catch (err) {
      if (!(err instanceof CorruptLayer)) throw err;
      await this.#drop(digest, err.message);
      return undefined;
    }
  }

  /** At open: every visible layer must have its manifest and files of the right sizes. */
  async #checkLayers(): Promise<void> {
    for (const digest of await this.list()) {
      const dir = this.#layout.layerDir(digest);
      try {
        const manifest = await readManifest(dir, digest);
        if (manifest !== undefined) await checkSizes(dir, manifest);
      } catch (err) {
        if (!(err instanceof CorruptLayer)) throw err;
        await this.#drop(digest, err.message);
      }
    }
  }

  async #drop(digest: Digest, reason: string): Promise<void> {
    corruptChannel.publish({ root: this.root, digest, reason } satisfies StoreCorruptEvent);
    this.#open.evict(digest);
    await this.#layout.removeDir(this.#layout.layerDir(digest));
  }

  #assertOpen(): void {
    if (this.#closed) throw new GcfsError(ErrorCode.Internal, `store ${this.root} is closed`);
  }
}

async function readRange(open: OpenLayer, first: number, count: number): Promise<Buffer[]> {
  const records = open.layer.blocks;
  const [start, end] = clampRange(first, count, records.length);
  if (start === end) return [];
  const base = records[start]!.offset;
  const data = await readExactly(
    open.blocks,
    base,
    totalLength(records.slice(start, end)) - base,
    open.layer.digest,
  );
  return records.slice(start, end).map((r) => data.subarray(r.offset - base, r.offset - base + r.length));
}

async function loadFailures(layout: FileLayout): Promise<Map<Digest, LayerFailure>> {
  const failures = new Map<Digest, LayerFailure>();
  for (const algorithm of ALGORITHMS) {
    const dir = layout.failedDir(algorithm);
    for (const name of await readdir(dir)) {
      const digest = `${algorithm}:${name.replace(/\.json$/, '')}`;
      if (!isDigest(digest)) continue;
      try {
        const { reason, at } = JSON.parse(await readFile(join(dir, name), 'utf8')) as LayerFailure;
        failures.set(digest, { reason: String(reason), at: Number(at) });
      } catch {
        await rm(join(dir, name), { force: true }); // written atomically, so unreadable means damaged
      }
    }
  }
  return failures;
}
