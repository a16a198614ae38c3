import { ErrorCode, GcfsError, quote } from '@gcfs/core';
import { parentPath } from './paths.js';
import type { TarEntryHeader } from './tar-reader.js';
import { classifyWhiteout } from './whiteout.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout';

/**
 * One path of a layer as the index serves it: its tar header's attributes without the tar
 * offsets. Hard links carry their target's content size; the root directory is `''`.
 */
export interface TocEntry extends Omit<TarEntryHeader, 'type' | 'headerOffset' | 'dataOffset'> {
  /** `whiteout`: `name` is deleted from the layers below (the `.wh.` marker itself is not listed). */
  type: EntryType;
  /** Directories: the layers below are hidden under this one (`.wh..wh..opq`, or whiteout + dir). */
  opaque: boolean;
  /** A parent directory the tar did not list, made up with 0755 root:root, mtime 0. */
  implicit: boolean;
  /** Files and hard links to files: where the content starts in the layer's content stream. */
  contentOffset: number;
}

function conflict(name: string, problem: string, code: ErrorCode = ErrorCode.BadLayer): GcfsError {
  return new GcfsError(code, `layer entry ${quote(name)}: ${problem}`, { details: { entry: name } });
}

function implicitDir(name: string): TocEntry {
  return {
    name,
    type: 'dir',
    mode: 0o755,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    size: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    linkName: '',
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
    opaque: false,
    implicit: true,
    contentOffset: 0,
  };
}

/**
 * Builds the table of contents while the tar is read once, with tar's semantics: later
 * entries for a path replace earlier ones (a directory keeps its children when replaced by
 * a directory), missing parents are made up, whiteouts and opaque markers follow the OCI
 * rules. A path under a non-directory (say, a symlink to /etc) is refused, and so is
 * replacing a path that hard links point to (extraction order would decide its content).
 */
export class TocBuilder {
  readonly #entries = new Map<string, TocEntry>([['', implicitDir('')]]);
  readonly #children = new Map<string, Set<string>>([['', new Set()]]);
  readonly #linked = new Set<string>();

  /**
   * Record one tar member whose content (for files) starts at `contentOffset` of the content
   * stream. Returns the entry now listed under that path, or undefined for markers.
   */
  add(header: TarEntryHeader, contentOffset: number): TocEntry | undefined {
    const meaning = classifyWhiteout(header.name);
    if (meaning.kind === 'opaque') {
      this.#directory(meaning.dir).opaque = true;
      return undefined;
    }
    const entry: TocEntry = {
      name: meaning.kind === 'whiteout' ? meaning.path : header.name,
      type: meaning.kind === 'whiteout' ? 'whiteout' : header.type,
      mode: header.mode,
      uid: header.uid,
      gid: header.gid,
      uname: header.uname,
      gname: header.gname,
      size: header.type === 'file' && meaning.kind === 'none' ? header.size : 0,
      mtimeSec: header.mtimeSec,
      mtimeNsec: header.mtimeNsec,
      linkName: meaning.kind === 'none' ? header.linkName : '',
      devMajor: header.devMajor,
      devMinor: header.devMinor,
      xattrs: header.xattrs,
      opaque: false,
      implicit: false,
      contentOffset: header.type === 'file' && meaning.kind === 'none' ? contentOffset : 0,
    };
    const existing = this.#entries.get(entry.name);
    if (entry.type === 'whiteout' && existing) {
      // A whiteout only concerns the layers below; an entry of this layer stays. A directory
      // of this layer and a whiteout of the same path mean: the lower directory is replaced.
      if (existing.type === 'dir') existing.opaque = true;
      return undefined;
    }
    if (entry.type === 'hardlink') this.#link(entry);
    this.#directory(parentPath(entry.name));
    this.#put(entry, existing);
    return entry;
  }

  /** Hard links are their target's inode: its metadata and content, whatever the header says. */
  #link(entry: TocEntry): void {
    const target = this.#entries.get(entry.linkName);
    if (!target || target.type === 'dir' || target.type === 'whiteout') {
      throw conflict(
        entry.name,
        `hard link to ${quote(entry.linkName)}, which is not in the layer`,
        ErrorCode.HostileTar,
      );
    }
    const { name, type, linkName } = entry;
    Object.assign(entry, target, { name, type, linkName, xattrs: new Map(target.xattrs) });
    // The paths along the chain are pinned: replacing one later would change what this link is.
    for (
      let at: TocEntry | undefined = target;
      at;
      at = at.type === 'hardlink' ? this.#entries.get(at.linkName) : undefined
    ) {
      this.#linked.add(at.name);
    }
  }

  /** The directory at `path`, made up (with its parents) when the tar did not list it. */
  #directory(path: string): TocEntry {
    const existing = this.#entries.get(path);
    if (existing?.type === 'dir') return existing;
    if (existing && existing.type !== 'whiteout') {
      throw conflict(path, `is a ${existing.type} but later entries are under it`, ErrorCode.HostileTar);
    }
    const dir = implicitDir(path);
    // Whited out and then filled in: the lower directory is gone, this one replaces it.
    dir.opaque = existing !== undefined;
    this.#directory(parentPath(path));
    this.#put(dir, existing);
    return dir;
  }

  #put(entry: TocEntry, existing: TocEntry | undefined): void {
    if (existing) {
      if (this.#linked.has(entry.name)) {
        throw conflict(entry.name, 'replaces an entry that hard links point to');
      }
      if (existing.type === 'dir' && entry.type === 'dir') {
        entry.opaque ||= existing.opaque;
      } else if (existing.type === 'dir') {
        this.#removeChildren(entry.name);
      } else if (existing.type === 'whiteout' && entry.type === 'dir') {
        entry.opaque = true;
      }
    } else {
      this.#children.get(parentPath(entry.name))!.add(entry.name);
    }
    if (entry.type === 'dir' && !this.#children.has(entry.name)) this.#children.set(entry.name, new Set());
    this.#entries.set(entry.name, entry);
  }

  #removeChildren(dir: string): void {
    for (const child of this.#children.get(dir) ?? []) {
      if (this.#linked.has(child)) throw conflict(child, 'removed while hard links point to it');
      this.#removeChildren(child);
      this.#entries.delete(child);
    }
    this.#children.delete(dir);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Every entry, sorted by name (the root, `''`, first). */
  finish(): TocEntry[] {
    return [...this.#entries.values()].sort((a, b) => compareNames(a.name, b.name));
  }
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lookups over a finished table of contents. */
export class Toc {
  readonly entries: readonly TocEntry[];
  readonly #byName = new Map<string, TocEntry>();
  readonly #children = new Map<string, TocEntry[]>();

  constructor(entries: readonly TocEntry[]) {
    this.entries = entries;
    for (const entry of entries) {
      this.#byName.set(entry.name, entry);
      if (entry.name === '') continue;
      const parent = parentPath(entry.name);
      const list = this.#children.get(parent);
      if (list) list.push(entry);
      else this.#children.set(parent, [entry]);
    }
    for (const list of this.#children.values()) list.sort((a, b) => compareNames(a.name, b.name));
  }

  get(path: string): TocEntry | undefined {
    return this.#byName.get(path);
  }

  /** Entries directly under directory `dir`, sorted by name; empty for anything else. */
  children(dir: string): readonly TocEntry[] {
    return this.#children.get(dir) ?? [];
  }

  /** What a hard link is a link to (following links to links); other entries are their own. */
  resolveHardlink(entry: TocEntry): TocEntry {
    let at = entry;
    for (let hops = 0; at.type === 'hardlink'; hops++) {
      const next = this.#byName.get(at.linkName);
      if (!next || hops > this.entries.length) {
        throw new GcfsError(ErrorCode.CorruptIndex, `hard link ${quote(entry.name)} leads nowhere`);
      }
      at = next;
    }
    return at;
  }
}
