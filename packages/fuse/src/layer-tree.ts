// A layer's file tree, built once from its cfsd table of contents: lookup by path,
// sorted children, hard links sharing one inode, whiteouts and opaque directories
// presented the way overlayfs reads them from a lower layer.

import { ErrorCode, GcfsError, OPAQUE_VALUE, OPAQUE_XATTR } from '@gcfs/core';
import { containerfs } from '@gcfs/proto';
import {
  makeDev,
  makeStat,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  type Stat,
} from './stat.js';

const EntryType = containerfs.EntryType;

const OPAQUE = Buffer.from(OPAQUE_VALUE);

/** One file system object; hard links are several paths to one Inode. */
export interface Inode {
  readonly ino: number;
  /** The entry that describes it (for hard links: the entry linked to). */
  readonly entry: containerfs.TocEntry;
  readonly stat: Stat;
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

export interface LayerNode {
  /** Path inside the layer; the root is ''. */
  readonly path: string;
  readonly inode: Inode;
  /** Directories: child names, sorted. */
  readonly children?: readonly string[];
}

export interface LayerTable {
  header: containerfs.LayerIndexHeader;
  entries: readonly containerfs.TocEntry[];
}

/** Hands out inode numbers; fuse-native carries 32 bits of them. */
export type InoAllocator = () => number;

const TYPE_BITS: Partial<Record<containerfs.EntryType, number>> = {
  [EntryType.ENTRY_TYPE_FILE]: S_IFREG,
  [EntryType.ENTRY_TYPE_DIR]: S_IFDIR,
  [EntryType.ENTRY_TYPE_SYMLINK]: S_IFLNK,
  [EntryType.ENTRY_TYPE_CHAR]: S_IFCHR,
  [EntryType.ENTRY_TYPE_BLOCK]: S_IFBLK,
  [EntryType.ENTRY_TYPE_FIFO]: S_IFIFO,
  // An overlay whiteout is a character device 0:0 with mode 0.
  [EntryType.ENTRY_TYPE_WHITEOUT]: S_IFCHR,
};

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function badIndex(digest: string, message: string): GcfsError {
  return new GcfsError(ErrorCode.CorruptIndex, `index of layer ${digest}: ${message}`, {
    details: { layer: digest },
  });
}

export class LayerTree {
  readonly digest: string;
  readonly header: containerfs.LayerIndexHeader;
  readonly #nodes = new Map<string, LayerNode>();
  /** Sum of regular file sizes, for statfs. */
  readonly contentBytes: number;

  constructor(digest: string, table: LayerTable, allocate: InoAllocator) {
    this.digest = digest;
    this.header = table.header;
    const byName = new Map<string, containerfs.TocEntry>();
    for (const entry of table.entries) byName.set(entry.name, entry);
    if (!byName.has('')) byName.set('', rootEntry());

    const children = new Map<string, string[]>();
    const subdirs = new Map<string, number>();
    const links = new Map<string, number>();
    for (const entry of byName.values()) {
      if (entry.name === '') continue;
      const parent = parentOf(entry.name);
      if (byName.get(parent)?.type !== EntryType.ENTRY_TYPE_DIR) {
        throw badIndex(digest, `${JSON.stringify(entry.name)} is not under a directory`);
      }
      const list = children.get(parent);
      if (list) list.push(baseOf(entry.name));
      else children.set(parent, [baseOf(entry.name)]);
      if (entry.type === EntryType.ENTRY_TYPE_DIR) subdirs.set(parent, (subdirs.get(parent) ?? 0) + 1);
      const target = this.#linkTarget(entry, byName);
      links.set(target.name, (links.get(target.name) ?? 0) + 1);
    }
    for (const list of children.values()) list.sort(compareBytes);

    const inodes = new Map<string, Inode>();
    let contentBytes = 0;
    const inodeOf = (target: containerfs.TocEntry): Inode => {
      let inode = inodes.get(target.name);
      if (inode) return inode;
      const isDir = target.type === EntryType.ENTRY_TYPE_DIR;
      inode = makeInode(
        allocate(),
        target,
        isDir ? 2 + (subdirs.get(target.name) ?? 0) : (links.get(target.name) ?? 1),
      );
      if (target.type === EntryType.ENTRY_TYPE_FILE) contentBytes += target.size;
      inodes.set(target.name, inode);
      return inode;
    };
    // Sorted, so that inode numbers follow path order whatever order cfsd sent.
    for (const name of [...byName.keys()].sort(compareBytes)) {
      const entry = byName.get(name)!;
      const inode = inodeOf(this.#linkTarget(entry, byName));
      const list = children.get(name);
      this.#nodes.set(
        name,
        list === undefined && entry.type !== EntryType.ENTRY_TYPE_DIR
          ? { path: name, inode }
          : { path: name, inode, children: list ?? [] },
      );
    }
    this.contentBytes = contentBytes;
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** The node at `path` ('' for the root), or undefined. */
  get(path: string): LayerNode | undefined {
    return this.#nodes.get(path);
  }

  /** What a hard link finally points to; every other entry is its own target. */
  #linkTarget(entry: containerfs.TocEntry, byName: Map<string, containerfs.TocEntry>): containerfs.TocEntry {
    let at = entry;
    for (let hops = 0; at.type === EntryType.ENTRY_TYPE_HARDLINK; hops++) {
      const next = byName.get(at.linkName);
      if (next === undefined || hops > byName.size) {
        throw badIndex(this.digest, `hard link ${JSON.stringify(entry.name)} leads nowhere`);
      }
      at = next;
    }
    return at;
  }
}

function makeInode(ino: number, entry: containerfs.TocEntry, nlink: number): Inode {
  const typeBits = TYPE_BITS[entry.type];
  if (typeBits === undefined) {
    throw new GcfsError(ErrorCode.CorruptIndex, `entry ${JSON.stringify(entry.name)} has no known type`);
  }
  const whiteout = entry.type === EntryType.ENTRY_TYPE_WHITEOUT;
  const device = entry.type === EntryType.ENTRY_TYPE_CHAR || entry.type === EntryType.ENTRY_TYPE_BLOCK;
  const size =
    entry.type === EntryType.ENTRY_TYPE_FILE
      ? entry.size
      : entry.type === EntryType.ENTRY_TYPE_SYMLINK
        ? Buffer.byteLength(entry.linkName)
        : entry.type === EntryType.ENTRY_TYPE_DIR
          ? 4096
          : 0;
  const xattrs = new Map<string, Buffer>(
    Object.entries(entry.xattrs).map(([name, value]) => [name, Buffer.from(value)]),
  );
  if (entry.opaque) xattrs.set(OPAQUE_XATTR, OPAQUE);
  const stat = makeStat({
    mode: typeBits | (whiteout ? 0 : entry.mode & 0o7777),
    uid: entry.uid,
    gid: entry.gid,
    size,
    nlink,
    ino,
    rdev: device ? makeDev(entry.devMajor, entry.devMinor) : 0,
    mtimeMs: entry.mtimeSec * 1000 + Math.floor(entry.mtimeNsec / 1e6),
  });
  return { ino, entry, stat, xattrs };
}

function rootEntry(): containerfs.TocEntry {
  return containerfs.TocEntry.fromPartial({ name: '', type: EntryType.ENTRY_TYPE_DIR, mode: 0o755 });
}

/** The order the index sorts names in (UTF-16 code units; byte order for all but astral characters). */
export function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
