// The whole mount: `layers/sha256=<hex>/` (each layer's tree from its table of contents),
// `images/<ref>/<i>` (one symlink per layer of an image, to the FUSE layer while it is
// streamed, to the local copy once it is downloaded) and, with --flatten_images,
// `flattened/<ref>/` (the image's layers merged; see flat-tree.ts). The daemon changes it
// at run time.

import { ErrorCode, GcfsError, imageDirName, layerDirName, streamedLayerTarget } from '@gcfs/core';
import type { RemoteBlocks } from './content.js';
import { flatNode } from './flat-tree.js';
import { type Inode, type LayerNode, type LayerTable, LayerTree } from './layer-tree.js';
import { makeStat, S_IFDIR, S_IFLNK, S_IFMT, type Stat } from './stat.js';

/** A registered layer: its tree and where its blocks come from. */
export interface MountedLayer {
  readonly tree: LayerTree;
  remote: RemoteBlocks;
}

/** What the daemon hands over for a layer. */
export interface LayerSource {
  table: LayerTable;
  remote: RemoteBlocks;
}

/** One object of the mount, as the FUSE operations need it. */
export interface FsNode {
  stat: Stat;
  /** Directories: the entries under it, sorted. */
  children?: () => Array<[string, Stat]>;
  linkTarget?: string;
  xattrs?: ReadonlyMap<string, Buffer>;
  /** Regular files of layers. */
  file?: { layer: MountedLayer; path: string; inode: Inode };
}

interface ImageDir {
  readonly ino: number;
  readonly layers: ReadonlyArray<{ digest: string; ino: number }>;
  readonly mtimeMs: number;
}

const ROOT_INO = 1;
const IMAGES_INO = 2;
const LAYERS_INO = 3;
const FLATTENED_INO = 4;

/** `name` in directory `dir` of a layer ('' is the root). */
export function childPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** A layer's non-directory node: symlinks carry their target, the rest read as layer files. */
export function leafNode(layer: MountedLayer, node: LayerNode): FsNode {
  const { inode } = node;
  const result: FsNode = { stat: inode.stat, xattrs: inode.xattrs };
  if ((inode.stat.mode & S_IFMT) === S_IFLNK) result.linkTarget = inode.entry.linkName;
  else result.file = { layer, path: node.path, inode };
  return result;
}

/**
 * The mount's root: root's alone. The mount has allow_other and default_permissions, so the
 * kernel checks these bits for every user: with them no local user reaches an image's files,
 * whatever the mount point's parent allows. Containers still read theirs: overlayfs opens
 * its lower layers with the credentials of whoever mounted it (containerd, root).
 */
const ROOT_MODE = 0o500;

function dirStat(ino: number, nlink: number, mtimeMs: number, mode = 0o555): Stat {
  return makeStat({ mode: S_IFDIR | mode, uid: 0, gid: 0, size: 4096, nlink, ino, mtimeMs });
}

export interface TreeOptions {
  /** Serve `flattened/<ref>/` for each image whose layers are all here. */
  flatten?: boolean;
}

export class GcfsTree {
  readonly #flatten: boolean;
  readonly #layers = new Map<string, MountedLayer>();
  readonly #images = new Map<string, ImageDir>();
  /** Layer digest → absolute path of its local copy; also for layers not (yet) added. */
  readonly #localDirs = new Map<string, string>();
  readonly #startedMs = Date.now();
  #nextIno = 16;

  constructor(options: TreeOptions = {}) {
    this.#flatten = options.flatten ?? false;
  }

  readonly #allocate = (): number => {
    // fuse-native carries 32-bit inode numbers.
    if (this.#nextIno >= 2 ** 32) throw new GcfsError(ErrorCode.Internal, 'out of inode numbers');
    return this.#nextIno++;
  };

  /** Add a layer (or give an existing one a new backend, e.g. a fresh session). */
  addLayer(digest: string, source: LayerSource): LayerTree {
    const dirName = layerDirName(digest);
    const existing = this.#layers.get(dirName);
    if (existing) {
      existing.remote = source.remote;
      return existing.tree;
    }
    const tree = new LayerTree(digest, source.table, this.#allocate);
    this.#layers.set(dirName, { tree, remote: source.remote });
    return tree;
  }

  /** Where the layer's blocks come from, or undefined for a layer not (or no longer) here. */
  remoteOf(digest: string): RemoteBlocks | undefined {
    return this.#layers.get(layerDirName(digest))?.remote;
  }

  hasLayer(digest: string): boolean {
    return this.#layers.has(layerDirName(digest));
  }

  removeLayer(digest: string): boolean {
    this.#localDirs.delete(digest);
    return this.#layers.delete(layerDirName(digest));
  }

  /**
   * Serve the layer from `localDir` (the downloader's unpacked copy): image symlinks point
   * there and reads of `layers/` use its files. `undefined` goes back to streaming.
   */
  switchLayer(digest: string, localDir: string | undefined): void {
    if (localDir === undefined) this.#localDirs.delete(digest);
    else if (!localDir.startsWith('/')) {
      throw new GcfsError(ErrorCode.InvalidArgument, `local layer dir ${localDir} is not absolute`);
    } else this.#localDirs.set(digest, localDir);
  }

  localDir(digest: string): string | undefined {
    return this.#localDirs.get(digest);
  }

  /** Create or replace `images/<ref>/` with one symlink per layer, bottom layer first. */
  setImage(reference: string, layerDigests: readonly string[]): void {
    const dirName = imageDirName(reference);
    if (dirName === '' || dirName === '.' || dirName === '..') {
      throw new GcfsError(
        ErrorCode.InvalidReference,
        `cannot name an image directory after ${JSON.stringify(reference)}`,
      );
    }
    const old = this.#images.get(dirName);
    this.#images.set(dirName, {
      ino: old?.ino ?? this.#allocate(),
      layers: layerDigests.map((digest, i) => ({
        digest,
        ino: old?.layers[i]?.digest === digest ? old.layers[i].ino : this.#allocate(),
      })),
      mtimeMs: Date.now(),
    });
  }

  removeImage(reference: string): boolean {
    return this.#images.delete(imageDirName(reference));
  }

  layerDigests(): string[] {
    return [...this.#layers.values()].map((layer) => layer.tree.digest);
  }

  imageDirNames(): string[] {
    return [...this.#images.keys()];
  }

  /** statfs numbers: content bytes and entries of every layer. */
  totals(): { bytes: number; files: number } {
    let bytes = 0;
    let files = 0;
    for (const { tree } of this.#layers.values()) {
      bytes += tree.contentBytes;
      files += tree.size;
    }
    return { bytes, files };
  }

  /** The object at a FUSE path (`/`, `/layers/sha256=…/a/b`), or undefined. */
  lookup(path: string): FsNode | undefined {
    if (path === '/') return this.#root();
    const rest = path.slice(1);
    const slash = rest.indexOf('/');
    const top = slash < 0 ? rest : rest.slice(0, slash);
    const below = slash < 0 ? undefined : rest.slice(slash + 1);
    if (top === 'layers') return below === undefined ? this.#layersDir() : this.#layerNode(below);
    if (top === 'images') return below === undefined ? this.#imagesDir() : this.#imageNode(below);
    if (top === 'flattened' && this.#flatten) {
      return below === undefined ? this.#flattenedDir() : this.#flatNode(below);
    }
    return undefined;
  }

  #root(): FsNode {
    const tops: Array<[string, () => FsNode]> = [
      ['images', () => this.#imagesDir()],
      ['layers', () => this.#layersDir()],
    ];
    if (this.#flatten) tops.unshift(['flattened', () => this.#flattenedDir()]);
    return {
      stat: dirStat(ROOT_INO, 2 + tops.length, this.#startedMs, ROOT_MODE),
      children: () => tops.map(([name, node]) => [name, node().stat]),
    };
  }

  /** An image's layers, when all are served: a merged view missing a layer would be wrong. */
  #servedLayers(image: ImageDir): MountedLayer[] | undefined {
    const layers = image.layers.flatMap(({ digest }) => this.#layers.get(layerDirName(digest)) ?? []);
    return layers.length === image.layers.length ? layers : undefined;
  }

  #flattenedDir(): FsNode {
    const names = [...this.#images]
      .filter(([, image]) => this.#servedLayers(image) !== undefined)
      .map(([name]) => name)
      .sort();
    return {
      stat: dirStat(FLATTENED_INO, 2 + names.length, this.#startedMs),
      children: () =>
        names.flatMap((name): Array<[string, Stat]> => {
          const node = this.#flatNode(name);
          return node === undefined ? [] : [[name, node.stat]];
        }),
    };
  }

  #flatNode(rest: string): FsNode | undefined {
    const slash = rest.indexOf('/');
    const image = this.#images.get(slash < 0 ? rest : rest.slice(0, slash));
    const layers = image && this.#servedLayers(image);
    return layers && flatNode(layers, slash < 0 ? '' : rest.slice(slash + 1));
  }

  #layersDir(): FsNode {
    return {
      stat: dirStat(LAYERS_INO, 2 + this.#layers.size, this.#startedMs),
      children: () =>
        [...this.#layers.keys()].sort().map((name) => [name, this.#layerNode(name)!.stat] as [string, Stat]),
    };
  }

  #imagesDir(): FsNode {
    return {
      stat: dirStat(IMAGES_INO, 2 + this.#images.size, this.#startedMs),
      children: () =>
        [...this.#images.keys()].sort().map((name) => [name, this.#imageNode(name)!.stat] as [string, Stat]),
    };
  }

  #layerNode(rest: string): FsNode | undefined {
    const slash = rest.indexOf('/');
    const layer = this.#layers.get(slash < 0 ? rest : rest.slice(0, slash));
    if (layer === undefined) return undefined;
    return this.#inLayer(layer, slash < 0 ? '' : rest.slice(slash + 1));
  }

  #inLayer(layer: MountedLayer, path: string): FsNode | undefined {
    const node = layer.tree.get(path);
    if (node === undefined) return undefined;
    if (node.children === undefined) return leafNode(layer, node);
    const names = node.children;
    return {
      stat: node.inode.stat,
      xattrs: node.inode.xattrs,
      children: () => names.map((name) => [name, layer.tree.get(childPath(path, name))!.inode.stat]),
    };
  }

  #imageNode(rest: string): FsNode | undefined {
    const slash = rest.indexOf('/');
    const image = this.#images.get(slash < 0 ? rest : rest.slice(0, slash));
    if (image === undefined) return undefined;
    if (slash < 0) {
      return {
        stat: dirStat(image.ino, 2, image.mtimeMs),
        children: () => image.layers.map((_, i) => [String(i), this.#imageLink(image, i)!.stat]),
      };
    }
    const index = rest.slice(slash + 1);
    return /^(0|[1-9][0-9]*)$/.test(index) ? this.#imageLink(image, Number(index)) : undefined;
  }

  #imageLink(image: ImageDir, index: number): FsNode | undefined {
    const layer = image.layers[index];
    if (layer === undefined) return undefined;
    const target = this.#localDirs.get(layer.digest) ?? streamedLayerTarget(layer.digest);
    const stat = makeStat({
      mode: S_IFLNK | 0o777,
      uid: 0,
      gid: 0,
      size: Buffer.byteLength(target),
      nlink: 1,
      ino: layer.ino,
      mtimeMs: image.mtimeMs,
    });
    return { stat, linkTarget: target };
  }
}
