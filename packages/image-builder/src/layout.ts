import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Descriptor, type Digest, digestHex, digestOf, MediaType } from '@gcfs/core';

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): the
 * on-disk form of what we build, so big layers live in files rather than memory.
 */
export class OciLayout {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Open `dir` as a layout, creating it (or the missing parts) as needed. */
  static async open(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const marker = join(dir, 'oci-layout');
    if (!(await exists(marker))) {
      await writeFile(marker, `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
    }
    return new OciLayout(dir);
  }

  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  /** A fresh file name inside the blobs dir, so that commitBlob() is an atomic rename. */
  tempBlobPath(): string {
    return join(this.dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
  }

  async commitBlob(tempPath: string, digest: Digest): Promise<void> {
    await rename(tempPath, this.blobPath(digest));
  }

  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Store canonical JSON (no whitespace, keys in insertion order) and describe it. */
  async writeJson(mediaType: string, value: unknown): Promise<Descriptor> {
    const body = Buffer.from(JSON.stringify(value));
    const digest = digestOf(body);
    await writeFile(this.blobPath(digest), body);
    return { mediaType, digest, size: body.length };
  }

  openBlob(digest: Digest): Readable {
    return createReadStream(this.blobPath(digest));
  }

  readBlob(digest: Digest): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  /** Record `descriptor` in index.json, under `tag` if given (replacing an earlier one). */
  async addRoot(descriptor: Descriptor, tag?: string): Promise<void> {
    const file = join(this.dir, 'index.json');
    const index = (await exists(file))
      ? (JSON.parse(await readFile(file, 'utf8')) as { manifests: Descriptor[] })
      : { manifests: [] };
    const entry: Descriptor = tag
      ? { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: tag } }
      : descriptor;
    const manifests = index.manifests.filter((m) =>
      tag ? m.annotations?.[REF_NAME] !== tag : m.digest !== descriptor.digest,
    );
    manifests.push(entry);
    const next = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    await writeFile(file, `${JSON.stringify(next, null, 2)}\n`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
