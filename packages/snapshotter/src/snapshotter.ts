// Snapshots as containerd's overlayfs snapshotter makes them: snapshots/<id>/fs (the
// layer, the upperdir of an active) and snapshots/<id>/work under the root, metadata in
// <root>/metadata.lmdb. Creation makes the directory first and commits the metadata
// second; removal commits the metadata first and removes the directory second. A crash
// therefore leaves at worst a directory no record names, which open() and cleanup()
// remove. Remote snapshots (remote.ts) are one record and no directory.

import { EventEmitter } from 'node:events';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DiskUsage,
  diskUsage,
  ErrorCode,
  ensurePrivateDir,
  GcfsError,
  PRIVATE_DIR_MODE,
} from '@gcfs/core';
import { type FieldLookup, matchesFilter, parseFilters } from './filters.js';
import { Metadata, type SnapshotInfo, type SnapshotKind, type SnapshotRecord } from './metadata.js';
import {
  type FallbackEvent,
  FallbackMemory,
  type FallbackReason,
  fallbackOf,
  isFallback,
  layerUnavailable,
  REMOTE_LABEL,
  type RemoteLayerRef,
  type RemoteLayers,
  remoteLayerOf,
  SNAPSHOT_REF_LABEL,
  sameImage,
} from './remote.js';

export type { SnapshotInfo, SnapshotKind } from './metadata.js';

/** containerd.types.Mount without the target, which the caller chooses. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface SnapshotterOptions {
  /** The streaming side; without it every snapshot is a normal one. */
  remote?: RemoteLayers;
  /**
   * How long the other layers of an image that fell back fall back without asking (default
   * 60 s).
   */
  fallbackMemoryMs?: number;
  /**
   * Reasons that hold for as long as the process runs (gcfsd without a content service): an
   * image refused for one of them is never asked about again, so its pull is reported once
   * however long it takes.
   */
  lastingFallbacks?: ReadonlySet<FallbackReason>;
}

export interface SnapshotterEvents {
  /** A layer was committed as a remote snapshot. */
  remote: [{ target: string; layer: RemoteLayerRef }];
  /**
   * An image is pulled normally instead of streamed (once per image within the memory's TTL,
   * once per image and process for a lasting reason).
   */
  fallback: [FallbackEvent];
  /** The streaming side failed to release an image no snapshot uses. */
  releaseFailed: [{ layer: RemoteLayerRef; error: unknown }];
}

export class Snapshotter extends EventEmitter<SnapshotterEvents> {
  readonly root: string;
  readonly #metadata: Metadata;
  readonly #remote: RemoteLayers | undefined;
  readonly #fallbacks: FallbackMemory;
  #nextId: number;
  /** Ids whose directory exists but whose metadata is not committed yet: cleanup() spares them. */
  readonly #creating = new Set<number>();

  private constructor(root: string, metadata: Metadata, nextId: number, options: SnapshotterOptions) {
    super();
    this.root = root;
    this.#metadata = metadata;
    this.#nextId = nextId;
    this.#remote = options.remote;
    this.#fallbacks = new FallbackMemory(options.fallbackMemoryMs ?? 60_000, {
      ...(options.lastingFallbacks && { lasting: options.lastingFallbacks }),
    });
  }

  /**
   * Open (creating it if needed) the snapshotter at `root`; leftovers of a crash are removed.
   * The root is made private (0700, created or tightened), as containerd's overlayfs makes
   * its own: the snapshots' upper dirs hold what containers wrote.
   */
  static async open(root: string, options: SnapshotterOptions = {}): Promise<Snapshotter> {
    await ensurePrivateDir(root);
    await mkdir(join(root, 'snapshots'), { recursive: true, mode: PRIVATE_DIR_MODE });
    const metadata = Metadata.open(join(root, 'metadata.lmdb'));
    const ids = metadata.all().map((info) => info.id);
    const snapshotter = new Snapshotter(root, metadata, Math.max(0, ...ids) + 1, options);
    try {
      await snapshotter.cleanup();
    } catch (err) {
      await metadata.close();
      throw err;
    }
    return snapshotter;
  }

  /**
   * An active snapshot on `parent` ('' for none): its mounts are writable. With the
   * `containerd.io/snapshot.ref` label of an unpack and a streamable layer, the layer is
   * committed as a remote snapshot under that name instead and ALREADY_EXISTS thrown.
   */
  async prepare(key: string, parent: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    const target = labels[SNAPSHOT_REF_LABEL];
    if (
      target !== undefined &&
      this.#remote !== undefined &&
      (await this.#commitRemote(target, parent, labels))
    ) {
      throw new GcfsError(ErrorCode.AlreadyExists, `snapshot ${target} already exists (streamed by gcfs)`);
    }
    return this.#create('active', key, parent, labels);
  }

  /** A read-only view of `parent`. */
  view(key: string, parent: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.#create('view', key, parent, labels);
  }

  /** The mounts of an active snapshot or a view. */
  async mounts(key: string): Promise<Mount[]> {
    const info = this.#metadata.require(key);
    if (info.kind === 'committed') {
      throw new GcfsError(ErrorCode.FailedPrecondition, `snapshot ${key} is committed, not active or view`);
    }
    return this.#mountsOf(info);
  }

  /** Turn the active snapshot `key` into the committed snapshot `name`, with `labels` only. */
  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.#metadata.write(() => {
      if (this.#metadata.get(name)) {
        throw new GcfsError(ErrorCode.AlreadyExists, `committed snapshot ${name} already exists`);
      }
      const active = this.#metadata.require(key);
      if (active.kind !== 'active') {
        throw new GcfsError(ErrorCode.FailedPrecondition, `snapshot ${key} is not active`);
      }
      const now = Date.now();
      const committed: SnapshotRecord = {
        id: active.id,
        kind: 'committed',
        parent: active.parent,
        labels: { ...labels },
        createdAt: now,
        updatedAt: now,
      };
      return { result: undefined, writes: { [key]: undefined, [name]: committed } };
    });
  }

  /** Remove a snapshot that no other snapshot has as its parent. */
  async remove(key: string): Promise<void> {
    const info = await this.#metadata.write(() => {
      const info = this.#metadata.require(key);
      if (this.#metadata.hasChildren(key)) {
        throw new GcfsError(ErrorCode.FailedPrecondition, `cannot remove snapshot ${key}: it has children`);
      }
      return { result: info, writes: { [key]: undefined } };
    });
    await rm(this.#dir(info.id), { recursive: true, force: true });
    const layer = info.remote;
    if (layer !== undefined && this.#remote !== undefined && !this.#uses(layer)) {
      await this.#remote
        .release(layer)
        .catch((error: unknown) => this.emit('releaseFailed', { layer, error }));
    }
  }

  /** One layer of every image that remote snapshots use (gcfsd makes sure they are served). */
  remoteImages(): RemoteLayerRef[] {
    const images: RemoteLayerRef[] = [];
    for (const { remote } of this.#metadata.all()) {
      if (remote !== undefined && !images.some((known) => sameImage(known, remote))) images.push(remote);
    }
    return images;
  }

  stat(key: string): SnapshotInfo {
    return this.#metadata.require(key);
  }

  /**
   * Change the labels of `name`: with no paths (or the path `labels`) they become
   * `labels`; with `labels.<key>` paths only those keys are set, or deleted when absent.
   */
  update(name: string, labels: Record<string, string>, paths: readonly string[] = []): Promise<SnapshotInfo> {
    return this.#metadata.write(() => {
      const info = this.#metadata.require(name);
      let next: Record<string, string> = { ...info.labels };
      if (paths.length === 0) next = { ...labels };
      for (const path of paths) {
        if (path === 'labels') {
          next = { ...labels };
        } else if (path.startsWith('labels.')) {
          const key = path.slice('labels.'.length);
          const value = labels[key];
          if (value === undefined) delete next[key];
          else next[key] = value;
        } else {
          throw new GcfsError(ErrorCode.InvalidArgument, `cannot update field ${path} of snapshot ${name}`);
        }
      }
      const { name: _name, ...record } = info;
      const updated = { ...record, labels: next, updatedAt: Date.now() };
      return { result: { name, ...updated }, writes: { [name]: updated } };
    });
  }

  /** The snapshots any of `filters` matches (containerd's syntax; none: all). */
  list(filters: readonly string[] = []): SnapshotInfo[] {
    const filter = parseFilters(filters);
    return this.#metadata.all().filter((info) => matchesFilter(filter, fieldsOf(info)));
  }

  /** Disk use of the snapshot's own directory (its layer, or an active's upper dir); 0 when remote. */
  async usage(key: string): Promise<DiskUsage> {
    const info = this.#metadata.require(key);
    if (info.remote !== undefined) return { size: 0, inodes: 0 };
    return diskUsage(join(this.#dir(info.id), 'fs'));
  }

  /** Remove snapshot directories that no record names (left by a crash). */
  async cleanup(): Promise<void> {
    const known = new Set(this.#metadata.all().map((info) => String(info.id)));
    for (const id of this.#creating) known.add(String(id));
    const entries = await readdir(join(this.root, 'snapshots'));
    for (const entry of entries) {
      if (!known.has(entry)) await rm(join(this.root, 'snapshots', entry), { recursive: true, force: true });
    }
  }

  close(): Promise<void> {
    return this.#metadata.close();
  }

  async #create(
    kind: SnapshotKind,
    key: string,
    parent: string,
    labels: Record<string, string>,
  ): Promise<Mount[]> {
    if (key === '') throw new GcfsError(ErrorCode.InvalidArgument, 'a snapshot key must not be empty');
    const id = this.#nextId++;
    const dir = this.#dir(id);
    this.#creating.add(id);
    try {
      await mkdir(join(dir, 'fs'), { recursive: true, mode: 0o755 });
      if (kind === 'active') await mkdir(join(dir, 'work'), { mode: 0o711 });
      const info = await this.#metadata.write(() => {
        if (this.#metadata.get(key))
          throw new GcfsError(ErrorCode.AlreadyExists, `snapshot ${key} already exists`);
        if (parent !== '') {
          const parentInfo = this.#metadata.get(parent);
          if (!parentInfo)
            throw new GcfsError(ErrorCode.NotFound, `parent snapshot ${parent} does not exist`);
          if (parentInfo.kind !== 'committed') {
            throw new GcfsError(ErrorCode.InvalidArgument, `parent ${parent} is not a committed snapshot`);
          }
        }
        const now = Date.now();
        const record: SnapshotRecord = {
          id,
          kind,
          parent,
          labels: { ...labels },
          createdAt: now,
          updatedAt: now,
        };
        return { result: { name: key, ...record }, writes: { [key]: record } };
      });
      return this.#mountsOf(info);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.#creating.delete(id);
    }
  }

  /**
   * Commit the layer an unpack asks for as a remote snapshot named `target`; false when it
   * cannot be streamed (the caller makes a normal snapshot and containerd pulls the layer).
   */
  async #commitRemote(target: string, parent: string, labels: Record<string, string>): Promise<boolean> {
    const remote = this.#remote!;
    // Another pull of the same image committed it meanwhile: containerd finds it by its label.
    if (this.#metadata.get(target)?.kind === 'committed') return true;
    const depth = parent === '' ? 0 : this.#metadata.chain(parent).length;
    const layer = remoteLayerOf(target, labels, depth);
    if (isFallback(layer)) {
      this.#fallBack(layer.manifestDigest ?? 'labels', layer);
      return false;
    }
    if (this.#fallbacks.has(layer.manifestDigest)) return false;
    try {
      await remote.prepare(layer);
    } catch (err) {
      this.#fallBack(layer.manifestDigest, fallbackOf(target, layer, err));
      // Registered before a layer turned out not streamable: release it unless snapshots use it.
      if (!this.#uses(layer)) await remote.release(layer).catch(() => undefined);
      return false;
    }
    let committed = false;
    try {
      committed = await this.#metadata.write(() => {
        if (this.#metadata.get(target)) return { result: false, writes: {} };
        const now = Date.now();
        const record: SnapshotRecord = {
          id: this.#nextId++,
          kind: 'committed',
          parent,
          labels: { ...labels, [REMOTE_LABEL]: layer.imageRef },
          createdAt: now,
          updatedAt: now,
          remote: layer,
        };
        return { result: true, writes: { [target]: record } };
      });
    } finally {
      // Registered for nothing (the commit failed, or lost a race to another pull).
      if (!committed && !this.#uses(layer)) await remote.release(layer).catch(() => undefined);
    }
    if (committed) this.emit('remote', { target, layer });
    return true;
  }

  #fallBack(key: string, event: FallbackEvent): void {
    if (this.#fallbacks.has(key)) return;
    this.#fallbacks.remember(key, event.reason);
    this.emit('fallback', event);
  }

  /** True while some remote snapshot streams from the image of `layer`. */
  #uses(layer: RemoteLayerRef): boolean {
    return this.#metadata.all().some((info) => info.remote !== undefined && sameImage(info.remote, layer));
  }

  #dir(id: number): string {
    return join(this.root, 'snapshots', String(id));
  }

  /** The directory a committed snapshot's layer is read from. */
  async #layerDir(info: SnapshotInfo): Promise<string> {
    if (info.remote === undefined) return join(this.#dir(info.id), 'fs');
    if (this.#remote === undefined) throw layerUnavailable(info.remote);
    return this.#remote.lowerDir(info.remote);
  }

  async #mountsOf(info: SnapshotInfo): Promise<Mount[]> {
    const chain = info.parent === '' ? [] : this.#metadata.chain(info.parent);
    const parents = await Promise.all(chain.map((parent) => this.#layerDir(parent)));
    const fs = join(this.#dir(info.id), 'fs');
    if (parents.length === 0) {
      return [{ type: 'bind', source: fs, options: [info.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
    }
    const lowerdir = `lowerdir=${parents.join(':')}`;
    if (info.kind === 'active') {
      const options = [`workdir=${join(this.#dir(info.id), 'work')}`, `upperdir=${fs}`, lowerdir];
      return [{ type: 'overlay', source: 'overlay', options }];
    }
    if (parents.length === 1) return [{ type: 'bind', source: parents[0]!, options: ['ro', 'rbind'] }];
    return [{ type: 'overlay', source: 'overlay', options: [lowerdir] }];
  }
}

const KIND_NAMES: Record<SnapshotKind, string> = { view: 'View', active: 'Active', committed: 'Committed' };

/** containerd's snapshot filter fields: name, parent, kind (View/Active/Committed), labels.<key>. */
function fieldsOf(info: SnapshotInfo): FieldLookup {
  return (path) => {
    const [field, ...rest] = path;
    if (field === 'labels') return rest.length === 0 ? undefined : info.labels[rest.join('.')];
    if (rest.length > 0) return undefined;
    if (field === 'name') return info.name;
    if (field === 'parent') return info.parent;
    if (field === 'kind') return KIND_NAMES[info.kind];
    return undefined;
  };
}
