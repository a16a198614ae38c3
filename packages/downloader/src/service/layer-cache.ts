import { lstat, readdir, rm } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import {
  type Digest,
  ErrorCode,
  ensurePrivateDir,
  GcfsError,
  layerDirName,
  layerOfDirName,
  parseDigest,
  UNTAR_DIR_PREFIX,
  untarDirName,
} from '@gcfs/core';

// Names inside the layer cache dir (see @gcfs/core's node-names.ts): a published layer is
// `sha256=<hex>`, the same layer while it is being untarred `untar_sha256:<hex>`.

/** What a start-up pass over the cache found and did. */
export interface CacheRecovery {
  /** Published layers (`sha256=<hex>` dirs) present. */
  layers: number;
  /** Leftover `untar_*` dirs of interrupted downloads, removed. */
  removed: string[];
}

/** The layer cache directory: where each layer lives, and which paths a request may name. */
export class LayerCache {
  readonly dir: string;

  constructor(dir: string) {
    if (!isAbsolute(dir)) {
      throw new GcfsError(ErrorCode.Config, `the layer cache dir must be an absolute path, got ${dir}`);
    }
    this.dir = normalize(dir);
  }

  /** `<dir>/sha256=<hex>`: the published, complete layer. */
  layerDir(digest: Digest): string {
    return join(this.dir, layerDirName(digest));
  }

  /** `<dir>/untar_sha256:<hex>`: where the layer is unpacked before it is published. */
  untarDir(digest: Digest): string {
    return join(this.dir, untarDirName(digest));
  }

  /**
   * The digest a request names, once its directories are exactly this cache's dirs for that
   * digest. The socket is root-only, but a request must still never steer writes or
   * removals anywhere else.
   */
  checkRequest(layerId: string, layerDir: string, untarDir: string): Digest {
    const digest = parseDigest(layerId);
    const expect = (what: string, given: string, wanted: string) => {
      if (!isAbsolute(given) || normalize(given) !== wanted) {
        throw new GcfsError(
          ErrorCode.InvalidArgument,
          `${what} must be ${wanted}, got ${JSON.stringify(given)}`,
        );
      }
    };
    expect('layer_dir', layerDir, this.layerDir(digest));
    expect('untar_dir', untarDir, this.untarDir(digest));
    return digest;
  }

  /** Whether the layer is published (its dir exists). */
  async has(digest: Digest): Promise<boolean> {
    try {
      return (await lstat(this.layerDir(digest))).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Make the dir private (created or tightened: it holds every downloaded layer's content),
   * remove what interrupted downloads left (`untar_*`), and count the published layers. Run
   * before serving: nothing may be untarring yet.
   */
  async recover(): Promise<CacheRecovery> {
    await ensurePrivateDir(this.dir);
    const removed: string[] = [];
    let layers = 0;
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (entry.name.startsWith(UNTAR_DIR_PREFIX)) {
        const path = join(this.dir, entry.name);
        await rm(path, { recursive: true, force: true, maxRetries: 3 });
        removed.push(path);
      } else if (entry.isDirectory() && layerOfDirName(entry.name) !== undefined) {
        layers += 1;
      }
    }
    return { layers, removed };
  }
}
