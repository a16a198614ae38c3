import type { LayerCompression, Platform } from '@gcfs/core';

/** Deterministic pseudo-random bytes of any size, generated as they are written. */
export interface SeededContent {
  size: number;
  seed: number | string;
}

/** The bytes of a regular file: inline, seeded, or copied from a real file. */
export type FileContent = string | Uint8Array | SeededContent | { path: string };

/** What every tar entry carries. */
export interface EntryBase {
  /** Path inside the layer, relative (a leading `/` or `./` is removed). */
  path: string;
  /** Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000). */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch; default DEFAULT_MTIME so layers are reproducible. */
  mtime?: number;
  /** Extended attributes, e.g. `user.x`, `trusted.overlay.opaque`, binary `security.capability`. */
  xattrs?: Record<string, string | Uint8Array>;
}

export interface FileEntry extends EntryBase {
  type: 'file';
  content?: FileContent;
}
export interface DirEntry extends EntryBase {
  type: 'dir';
}
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}
/** A hard link to a path written earlier in the same layer. */
export interface HardlinkEntry extends EntryBase {
  type: 'hardlink';
  target: string;
}
export interface DeviceEntry extends EntryBase {
  type: 'char' | 'block';
  major: number;
  minor: number;
}
export interface FifoEntry extends EntryBase {
  type: 'fifo';
}
/** Deletes `path` from the layers below: written as `<dir>/.wh.<name>`. */
export interface WhiteoutEntry extends EntryBase {
  type: 'whiteout';
}
/** Hides everything below directory `path` in lower layers: written as `<path>/.wh..wh..opq`. */
export interface OpaqueEntry extends EntryBase {
  type: 'opaque';
}

export type Entry =
  | FileEntry
  | DirEntry
  | SymlinkEntry
  | HardlinkEntry
  | DeviceEntry
  | FifoEntry
  | WhiteoutEntry
  | OpaqueEntry;

/**
 * How names longer than the 100 bytes of a ustar header are written: PAX `path`/`linkpath`
 * records (default) or GNU `././@LongLink` entries.
 */
export type LongNameFormat = 'pax' | 'gnu';

interface LayerCommon {
  /** Default 'gzip'. */
  compression?: LayerCompression;
  longNames?: LongNameFormat;
  /** Layer descriptor annotations. */
  annotations?: Record<string, string>;
}

/** A layer listed entry by entry; entries are written in the given order. */
export interface EntriesLayer extends LayerCommon {
  entries: readonly Entry[];
}

/** A layer made of a real directory tree (its root itself is not an entry). */
export interface DirectoryLayer extends LayerCommon {
  fromDirectory: string;
}

/** A layer whose uncompressed tar was made elsewhere (e.g. by GNU tar), taken byte for byte. */
export interface TarFileLayer extends Omit<LayerCommon, 'longNames'> {
  tarFile: string;
}

export type LayerSpec = EntriesLayer | DirectoryLayer | TarFileLayer;

/** The runtime part of an image config (OCI `config` object). */
export interface ContainerConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
}

export interface ImageSpec {
  /** Default linux/amd64. */
  platform?: Platform;
  config?: ContainerConfig;
  /** RFC 3339 creation time written to the config; omitted when absent (reproducible). */
  created?: string;
  layers: readonly LayerSpec[];
  /** Manifest annotations. */
  annotations?: Record<string, string>;
}

/** A multi-platform image: one manifest per platform under an image index. */
export interface IndexSpec {
  manifests: readonly ImageSpec[];
  annotations?: Record<string, string>;
}

export const DEFAULT_MTIME = 1_700_000_000;
export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
