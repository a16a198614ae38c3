// Snapshot metadata in an lmdb file under the snapshotter root: one record per snapshot
// key (or committed name). Every write is a synced transaction whose checks run inside
// it, so concurrent calls cannot both create a key and a crash leaves each change whole
// or absent.

import { ErrorCode, GcfsError } from '@gcfs/core';
import { type Database, open } from 'lmdb';
import type { RemoteLayerRef } from './remote.js';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotRecord {
  /** Names the snapshot's directory, snapshots/<id>; kept when an active is committed. */
  id: number;
  kind: SnapshotKind;
  /** The committed parent's name, '' for none. */
  parent: string;
  labels: Record<string, string>;
  /** Unix ms. */
  createdAt: number;
  updatedAt: number;
  /** A committed layer served by the streaming side instead of snapshots/<id>/fs. */
  remote?: RemoteLayerRef;
}

export interface SnapshotInfo extends SnapshotRecord {
  name: string;
}

const RECORD_VERSION = 1;

interface StoredRecord extends SnapshotRecord {
  v: number;
}

export class Metadata {
  readonly #db: Database<StoredRecord, string>;

  private constructor(db: Database<StoredRecord, string>) {
    this.#db = db;
  }

  static open(path: string): Metadata {
    try {
      // A put resolves only once its commit is synced to disk.
      return new Metadata(open<StoredRecord, string>({ path, noSubdir: true, overlappingSync: false }));
    } catch (err) {
      throw new GcfsError(ErrorCode.Config, `cannot open the snapshot metadata ${path}`, { cause: err });
    }
  }

  get(name: string): SnapshotInfo | undefined {
    const stored = this.#db.get(name);
    return stored === undefined ? undefined : toInfo(name, stored);
  }

  /** The snapshot or NOT_FOUND. */
  require(name: string): SnapshotInfo {
    const info = this.get(name);
    if (!info) throw new GcfsError(ErrorCode.NotFound, `snapshot ${name} does not exist`);
    return info;
  }

  all(): SnapshotInfo[] {
    return [...this.#db.getRange()].map(({ key, value }) => toInfo(key, value));
  }

  hasChildren(name: string): boolean {
    for (const { value } of this.#db.getRange()) if (value.parent === name) return true;
    return false;
  }

  /** `name` and its ancestors, nearest first. */
  chain(name: string): SnapshotInfo[] {
    const infos: SnapshotInfo[] = [];
    for (let current = name; current !== ''; ) {
      const info = this.require(current);
      infos.push(info);
      current = info.parent;
    }
    return infos;
  }

  /**
   * Run `fn` in a write transaction: it reads through this object and returns the writes
   * to make (undefined deletes); a throw aborts the transaction.
   */
  async write<T>(fn: () => { result: T; writes: Record<string, SnapshotRecord | undefined> }): Promise<T> {
    return this.#db.transaction(() => {
      const { result, writes } = fn();
      for (const [name, record] of Object.entries(writes)) {
        // Inside a transaction these apply at once; they resolve with its commit.
        if (record === undefined) void this.#db.remove(name);
        else void this.#db.put(name, { v: RECORD_VERSION, ...record });
      }
      return result;
    });
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}

function toInfo(name: string, stored: StoredRecord): SnapshotInfo {
  const { id, kind, parent, labels, createdAt, updatedAt, remote } = stored;
  return { name, id, kind, parent, labels, createdAt, updatedAt, ...(remote && { remote }) };
}
