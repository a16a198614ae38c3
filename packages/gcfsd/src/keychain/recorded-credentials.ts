// The pull secrets the keychain received (CRI PullImage's auth, UpdateCreds), per repository:
// `registry/repository` of the image as parseReference normalizes it, so that the pod spec's
// `localhost:5000/app:v1` and the snapshotter's `localhost:5000/app@sha256:...` (containerd's
// cri.image-ref, registered by digest) are the same key, and any later pull of that
// repository renews them. Each expires `ttlMs` after its last pull.
//
// They are kept on disk so that a gcfsd restarted with SIGKILL can authorize the images it
// restores: one JSON file, 0600 in gcfsd's private dir, replaced atomically (temp, fsync,
// rename, fsync of the dir). Every secret is registered for redaction as soon as it is read.

import { readFile } from 'node:fs/promises';
import {
  describeError,
  ErrorCode,
  ensurePrivateFile,
  GcfsError,
  type Logger,
  registerSecret,
  replaceDurably,
} from '@gcfs/core';
import { type Credential, parseReference } from '@gcfs/registry';

/** The key credentials are recorded under: the image's normalized `registry/repository`. */
export function repositoryKey(image: string): string {
  const ref = parseReference(image);
  return `${ref.registry}/${ref.repository}`;
}

interface Entry {
  credential: Credential;
  /** Unix ms. */
  expiresAt: number;
}

// Bumped if the file's shape changes; a file of another version is ignored (and replaced).
const FILE_VERSION = 1;

interface StoredFile {
  v: number;
  entries: Record<string, Entry>;
}

export interface RecordedCredentialsOptions {
  /** Where they are kept; undefined keeps them in memory only (no images-in-use DB either). */
  path: string | undefined;
  ttlMs: number;
  logger: Logger;
  now?: () => number;
}

function sameCredential(a: Credential, b: Credential): boolean {
  return a.username === b.username && a.password === b.password && a.identityToken === b.identityToken;
}

function registered(credential: Credential): Credential {
  registerSecret(credential.password);
  registerSecret(credential.identityToken);
  return credential;
}

function validEntry(value: unknown): value is Entry {
  const entry = value as Partial<Entry> | null;
  const credential = entry?.credential as Record<string, unknown> | undefined;
  return (
    typeof entry?.expiresAt === 'number' &&
    typeof credential === 'object' &&
    credential !== null &&
    ['username', 'password', 'identityToken'].every(
      (field) => credential[field] === undefined || typeof credential[field] === 'string',
    )
  );
}

export class RecordedCredentials {
  readonly #o: RecordedCredentialsOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Writes in order: each one writes the whole map as it is when it runs. */
  #writes: Promise<void> = Promise.resolve();
  /** The expiry of each entry as the file last written has it. */
  readonly #savedExpiry = new Map<string, number>();

  private constructor(options: RecordedCredentialsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Load what an earlier gcfsd recorded (expired entries dropped); a bad file is logged and ignored. */
  static async open(options: RecordedCredentialsOptions): Promise<RecordedCredentials> {
    const store = new RecordedCredentials(options);
    if (options.path !== undefined) await store.#load(options.path);
    return store;
  }

  /** How many unexpired entries there are. */
  get size(): number {
    this.#dropExpired();
    return this.#entries.size;
  }

  /** The unexpired credential recorded for the image's repository. */
  get(image: string): Credential | undefined {
    const entry = this.#entries.get(repositoryKey(image));
    if (entry === undefined || entry.expiresAt <= this.#now()) return undefined;
    return entry.credential;
  }

  /**
   * Record `credential` for the image's repository (renewing its expiry). Durable once the
   * promise resolves when the credential is new. A renewal of the same one is written behind,
   * and only when the file's expiry lags by a tenth of the TTL: every pod start pulls, and an
   * fsync per pull would compete with containerd's own (a restart may lose that tenth).
   * Returns how to undo it (a pull with it failed), unless something newer replaced it since.
   */
  async record(image: string, credential: Credential): Promise<() => Promise<void>> {
    const key = repositoryKey(image);
    const previous = this.#entries.get(key);
    const entry = { credential: registered({ ...credential }), expiresAt: this.#now() + this.#o.ttlMs };
    this.#entries.set(key, entry);
    if (previous === undefined || !sameCredential(previous.credential, entry.credential)) {
      await this.#persist();
    } else if ((this.#savedExpiry.get(key) ?? 0) < entry.expiresAt - this.#o.ttlMs / 10) {
      void this.#persist();
    }
    return async () => {
      if (this.#entries.get(key) !== entry) return;
      if (previous === undefined) this.#entries.delete(key);
      else this.#entries.set(key, previous);
      await this.#persist();
    };
  }

  /** Forget the credential of the image's repository. */
  async forget(image: string): Promise<void> {
    if (this.#entries.delete(repositoryKey(image))) await this.#persist();
  }

  /** Wait for writes under way. */
  flush(): Promise<void> {
    return this.#writes;
  }

  #dropExpired(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }

  #persist(): Promise<void> {
    const path = this.#o.path;
    if (path === undefined) return Promise.resolve();
    const write = async () => {
      this.#dropExpired();
      const entries = new Map(this.#entries);
      const stored: StoredFile = { v: FILE_VERSION, entries: Object.fromEntries(entries) };
      await replaceDurably(path, JSON.stringify(stored));
      this.#savedExpiry.clear();
      for (const [key, entry] of entries) this.#savedExpiry.set(key, entry.expiresAt);
    };
    const logged = (err: unknown) => {
      this.#o.logger.error('Cannot save the keychain: a restarted gcfsd will not have these credentials', {
        module: 'keychain',
        path,
        error: describeError(err),
      });
    };
    this.#writes = this.#writes.then(write).catch(logged);
    return this.#writes;
  }

  async #load(path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
      await ensurePrivateFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new GcfsError(ErrorCode.Config, `cannot read the keychain file ${path}`, {
        cause: err,
        hint: "it is gcfsd's, beside --images_in_use_db_path: check that directory, or remove the file (images pulled again record their credentials)",
      });
    }
    let stored: StoredFile | undefined;
    try {
      stored = JSON.parse(text) as StoredFile;
    } catch {
      stored = undefined;
    }
    if (stored?.v !== FILE_VERSION || typeof stored.entries !== 'object' || stored.entries === null) {
      this.#o.logger.warn(
        'Ignoring an unreadable keychain file; images pulled again record their credentials',
        {
          module: 'keychain',
          path,
        },
      );
      return;
    }
    const now = this.#now();
    for (const [key, entry] of Object.entries(stored.entries)) {
      if (!validEntry(entry) || entry.expiresAt <= now) continue;
      this.#entries.set(key, { credential: registered(entry.credential), expiresAt: entry.expiresAt });
      this.#savedExpiry.set(key, entry.expiresAt);
    }
  }
}
