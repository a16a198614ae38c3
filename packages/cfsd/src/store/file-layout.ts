import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Digest,
  type DigestAlgorithm,
  digestAlgorithm,
  digestHex,
  ErrorCode,
  ensurePrivateDir,
  GcfsError,
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  syncDir,
  writeDurable,
} from '@gcfs/core';

/**
 * The on-disk layout of a file store:
 *
 *   DIR/lock                               pid of the process that owns DIR
 *   DIR/layers/<alg>/<hex>/manifest.json   sizes and checksums of the three files below
 *   DIR/layers/<alg>/<hex>/index           the opaque serialised index
 *   DIR/layers/<alg>/<hex>/blocks          every block, back to back
 *   DIR/layers/<alg>/<hex>/blocks.table    uint32 LE length of each block
 *   DIR/failed/<alg>/<hex>.json            { reason, at } of a layer that cannot be indexed
 *   DIR/tmp/<unique>                       work in progress; emptied at open
 *
 * A layer directory is built complete in tmp/ and renamed into place, so a visible layer is
 * never half written; the manifest catches damage that happens afterwards.
 *
 * Only cfsd's user may read any of it (the blocks are the images' content): DIR and the
 * fixed dirs are made private at open (0700, tightened if found looser), and every dir and
 * file is created 0700 / 0600 whatever the umask. A store written by an older cfsd keeps its
 * 0755 layer dirs and 0644 files, unreachable below the private DIR.
 */
export const ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha512'];
export const MANIFEST = 'manifest.json';
export const INDEX = 'index';
export const BLOCKS = 'blocks';
export const TABLE = 'blocks.table';
const MANIFEST_VERSION = 1;

export interface LayerManifest {
  version: number;
  digest: Digest;
  createdAt: number;
  indexSize: number;
  indexSha256: string;
  blockCount: number;
  blocksSize: number;
  tableSha256: string;
}

export class FileLayout {
  readonly root: string;
  readonly tmp: string;

  constructor(root: string) {
    this.root = root;
    this.tmp = join(root, 'tmp');
  }

  layersDir(algorithm: DigestAlgorithm): string {
    return join(this.root, 'layers', algorithm);
  }

  failedDir(algorithm: DigestAlgorithm): string {
    return join(this.root, 'failed', algorithm);
  }

  layerDir(digest: Digest): string {
    return join(this.layersDir(digestAlgorithm(digest)), digestHex(digest));
  }

  failurePath(digest: Digest): string {
    return join(this.failedDir(digestAlgorithm(digest)), `${digestHex(digest)}.json`);
  }

  /** A fresh path under tmp/, unique across processes and calls. */
  tempPath(suffix = ''): string {
    return join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}${suffix}`);
  }

  /** Create the directories (or tighten them), durably. */
  async create(): Promise<void> {
    const dirs = [
      this.tmp,
      ...['layers', 'failed'].map((name) => join(this.root, name)),
      ...ALGORITHMS.flatMap((a) => [this.layersDir(a), this.failedDir(a)]),
    ];
    for (const dir of dirs) await ensurePrivateDir(dir);
    for (const dir of [this.root, join(this.root, 'layers'), join(this.root, 'failed')]) await syncDir(dir);
  }

  /**
   * Take DIR for this process. A lock left by a dead process is taken over: its tmp/ work is
   * abandoned, which is exactly what open() cleans up.
   */
  async lock(): Promise<void> {
    const path = join(this.root, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeDurable(path, `${process.pid}\n`);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isSafeInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new GcfsError(ErrorCode.Config, `store ${this.root} is in use by process ${owner}`, {
          hint: 'one cfsd per store directory; stop the other one or pick another --store',
        });
      }
      await rm(path, { force: true });
    }
    throw new GcfsError(ErrorCode.Config, `could not lock store ${this.root}`);
  }

  async unlock(): Promise<void> {
    await rm(join(this.root, 'lock'), { force: true });
  }

  /** Make `dir` disappear at once (rename into tmp/), then remove it. */
  async removeDir(dir: string): Promise<void> {
    const doomed = this.tempPath('.deleted');
    try {
      await rename(dir, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await syncDir(join(dir, '..'));
    await rm(doomed, { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Create a private file (0600) that must not exist yet. */
export function createPrivate(path: string): Promise<FileHandle> {
  return open(path, 'wx', PRIVATE_FILE_MODE);
}

/** Create a private directory (0700) that must not exist yet. */
export async function mkdirPrivate(path: string): Promise<void> {
  await mkdir(path, { mode: PRIVATE_DIR_MODE });
}

export function makeManifest(
  digest: Digest,
  index: Buffer,
  table: Buffer,
  blocksSize: number,
): LayerManifest {
  return {
    version: MANIFEST_VERSION,
    digest,
    createdAt: Date.now(),
    indexSize: index.length,
    indexSha256: sha256Hex(index),
    blockCount: table.length / 4,
    blocksSize,
    tableSha256: sha256Hex(table),
  };
}

export class CorruptLayer extends GcfsError {
  constructor(digest: Digest, reason: string) {
    super(ErrorCode.StoreCorrupt, `stored layer ${digest} is damaged: ${reason}`, { details: { digest } });
  }
}

/** The manifest of a visible layer, or undefined when the directory is absent. */
export async function readManifest(dir: string, digest: Digest): Promise<LayerManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw err;
    // A layer directory without a manifest is damage; no directory at all is absence.
    if (await exists(dir)) throw new CorruptLayer(digest, 'no manifest');
    return undefined;
  }
  let manifest: LayerManifest;
  try {
    manifest = JSON.parse(text) as LayerManifest;
  } catch {
    throw new CorruptLayer(digest, 'unreadable manifest');
  }
  if (manifest.version !== MANIFEST_VERSION || manifest.digest !== digest) {
    throw new CorruptLayer(digest, `manifest of version ${manifest.version} for ${manifest.digest}`);
  }
  return manifest;
}

/** Cheap check at open: the manifest and the sizes of the three files. */
export async function checkSizes(dir: string, manifest: LayerManifest): Promise<void> {
  const expected: [string, number][] = [
    [INDEX, manifest.indexSize],
    [TABLE, manifest.blockCount * 4],
    [BLOCKS, manifest.blocksSize],
  ];
  for (const [name, size] of expected) {
    const actual = await stat(join(dir, name)).then(
      (s) => s.size,
      () => -1,
    );
    if (actual !== size) {
      throw new CorruptLayer(manifest.digest, `${name} has ${actual} bytes, manifest says ${size}`);
    }
  }
}

/** Read a file of the layer and check it against the manifest's checksum. */
export async function readChecked(
  dir: string,
  name: string,
  sha256: string,
  digest: Digest,
): Promise<Buffer> {
  const data = await readFile(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new CorruptLayer(digest, `${name} is missing`);
    throw err;
  });
  if (sha256Hex(data) !== sha256) throw new CorruptLayer(digest, `${name} does not match its checksum`);
  return data;
}

/** Positioned read of exactly `length` bytes; a short read means the file was cut. */
export async function readExactly(
  handle: FileHandle,
  position: number,
  length: number,
  digest: Digest,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new CorruptLayer(digest, `blocks end at ${position + done}, expected ${position + length}`);
    }
    done += bytesRead;
  }
  return buffer;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
