// The images in use (`--images_in_use_db_path`): which images snapshots rely on, so
// that after a restart gcfsd can put their images/<name>/<i> paths back before anything
// reads them, and so that GC knows what it must never remove. An lmdb file: every put
// is a synced transaction, so a crash leaves each record either whole or absent.

import { open as fsOpen } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  ErrorCode,
  ensurePrivateDir,
  ensurePrivateFile,
  GcfsError,
  isDigest,
  PRIVATE_FILE_MODE,
} from '@gcfs/core';
import { type Database, open } from 'lmdb';

/** A layer of an image in use: enough to serve it again without asking cfsd first. */
export interface LayerRecord {
  digest: string;
  mediaType: string;
  /** Compressed blob size, for the downloader. */
  size: number;
}

export interface ImageRecord {
  /** The reference as registered; images/<name> is derived from it. */
  name: string;
  manifestDigest: string;
  layers: LayerRecord[];
  /** Unix ms. */
  registeredAt: number;
}

/** What start-up read back: the valid records, and the keys of records it could not use. */
export interface ImagesInUseContents {
  images: ImageRecord[];
  invalid: string[];
}

export interface ImagesInUse {
  /** Durable once the promise resolves. */
  put(record: ImageRecord): Promise<void>;
  /** Whether there was a record; durable once the promise resolves. */
  remove(name: string): Promise<boolean>;
  list(): ImagesInUseContents;
  close(): Promise<void>;
}

// Bumped if the record's shape changes; older records are then reported as invalid.
const RECORD_VERSION = 1;

interface StoredRecord extends ImageRecord {
  v: number;
}

function isLayerRecord(value: unknown): value is LayerRecord {
  const layer = value as Partial<LayerRecord> | null;
  return (
    typeof layer === 'object' &&
    layer !== null &&
    isDigest(layer.digest) &&
    typeof layer.mediaType === 'string' &&
    typeof layer.size === 'number'
  );
}

function validRecord(key: unknown, value: unknown): ImageRecord | undefined {
  const stored = value as Partial<StoredRecord> | null;
  if (
    typeof stored !== 'object' ||
    stored === null ||
    stored.v !== RECORD_VERSION ||
    stored.name !== key ||
    typeof stored.manifestDigest !== 'string' ||
    typeof stored.registeredAt !== 'number' ||
    !Array.isArray(stored.layers) ||
    !stored.layers.every(isLayerRecord)
  ) {
    return undefined;
  }
  const { name, manifestDigest, layers, registeredAt } = stored as StoredRecord;
  return { name, manifestDigest, layers, registeredAt };
}

class LmdbImagesInUse implements ImagesInUse {
  readonly #db: Database<StoredRecord, string>;

  constructor(db: Database<StoredRecord, string>) {
    this.#db = db;
  }

  async put(record: ImageRecord): Promise<void> {
    await this.#db.put(record.name, { v: RECORD_VERSION, ...record });
  }

  async remove(name: string): Promise<boolean> {
    // lmdb's remove() resolves true whether or not the key was there.
    if (this.#db.get(name) === undefined) return false;
    await this.#db.remove(name);
    return true;
  }

  list(): ImagesInUseContents {
    const images: ImageRecord[] = [];
    const invalid: string[] = [];
    for (const { key, value } of this.#db.getRange()) {
      const record = validRecord(key, value);
      if (record) images.push(record);
      else invalid.push(String(key));
    }
    return { images, invalid };
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}

/** Without --images_in_use_db_path nothing survives a restart, as in GKE's gcfsd. */
class MemoryImagesInUse implements ImagesInUse {
  readonly #images = new Map<string, ImageRecord>();

  async put(record: ImageRecord): Promise<void> {
    this.#images.set(record.name, structuredClone(record));
  }
  async remove(name: string): Promise<boolean> {
    return this.#images.delete(name);
  }
  list(): ImagesInUseContents {
    return { images: [...this.#images.values()].map((record) => structuredClone(record)), invalid: [] };
  }
  async close(): Promise<void> {}
}

/** Open (creating it and its directory if needed) the DB at `path`; '' keeps the records in memory. */
export async function openImagesInUse(path: string): Promise<ImagesInUse> {
  if (path === '') return new MemoryImagesInUse();
  try {
    await ensurePrivateDir(dirname(path));
    // lmdb creates its files 0644 less the umask: made 0600 first (an empty file is a new DB to
    // lmdb), so that tightening them below means someone loosened them, worth the warning.
    for (const file of [path, `${path}-lock`]) await (await fsOpen(file, 'a', PRIVATE_FILE_MODE)).close();
    // noSubdir: the path names the data file itself (plus `<path>-lock`), as GKE's flag does.
    // No overlapping sync: a put resolves only once its commit is synced to disk.
    const db = open<StoredRecord, string>({ path, noSubdir: true, overlappingSync: false });
    // The records name the images in use.
    try {
      for (const file of [path, `${path}-lock`]) await ensurePrivateFile(file);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new LmdbImagesInUse(db);
  } catch (err) {
    throw new GcfsError(ErrorCode.Config, `cannot open the images-in-use DB ${path}`, {
      cause: err,
      hint: 'check --images_in_use_db_path (a file path in a writable directory)',
    });
  }
}
