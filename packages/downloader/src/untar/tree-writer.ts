import {
  chmodSync,
  closeSync,
  constants,
  fsyncSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { ErrorCode, GcfsError, OPAQUE_VALUE, OPAQUE_XATTR, quote } from '@gcfs/core';
import { parentPath, type TocEntry } from '@gcfs/index';
import { llistxattr, lremovexattr, lsetxattr, mknod } from '@gcfs/native';

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const NODE_TYPE: Record<string, number> = {
  char: constants.S_IFCHR,
  block: constants.S_IFBLK,
  fifo: constants.S_IFIFO,
  whiteout: constants.S_IFCHR,
};

/**
 * A time for lutimes, in seconds as a double: near today's dates that keeps the nanoseconds
 * to within ~0.2 µs (utimensat with exact nanoseconds would need @gcfs/native), and the
 * second is always exact.
 */
export function timeOf(sec: number, nsec: number): number {
  const time = sec + nsec / 1e9;
  if (Math.floor(time) === sec) return time;
  // Rounded up into the next second: the last double before it instead.
  return sec + 1 - 2 ** (Math.floor(Math.log2(Math.abs(sec) + 1)) - 52);
}

function isErrno(err: unknown, code: string): boolean {
  return (err as { code?: unknown }).code === code;
}

/**
 * Writes a layer's entries under `root`, never through a symlink: every parent is checked to
 * be a real directory (lstat, then remembered) before anything is created in it, and every
 * final component is created exclusively (O_EXCL|O_NOFOLLOW, mkdir, symlink, link, mknod),
 * so a symlink planted by an earlier entry is replaced, not followed. Entries arrive with
 * TocBuilder's semantics already checked; this enforces them again on disk.
 */
export class TreeWriter {
  readonly #root: string;
  readonly #fsync: boolean;
  /** Paths known to be real directories of the tree (the root is ''). */
  readonly #dirs = new Set<string>(['']);
  /** Whiteout devices made here: the only non-directories a later entry may turn into a parent. */
  readonly #whiteouts = new Set<string>();

  constructor(root: string, options: { fsync?: boolean } = {}) {
    this.#root = root;
    this.#fsync = options.fsync ?? false;
  }

  /** Create the root (or accept an empty directory there) with the metadata of an unlisted root. */
  prepareRoot(): void {
    try {
      mkdirSync(this.#root, 0o755);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      if (!lstatSync(this.#root).isDirectory() || readdirSync(this.#root).length > 0) {
        throw new GcfsError(ErrorCode.InvalidArgument, `${this.#root} exists and is not an empty directory`);
      }
    }
    this.#implicitMetadata(this.#root);
  }

  #abs(name: string): string {
    return name === '' ? this.#root : `${this.#root}/${name}`;
  }

  /** Make sure `dir` and its parents are real directories, creating missing ones (0755 root:root). */
  ensureDir(dir: string): void {
    if (this.#dirs.has(dir)) return;
    this.ensureDir(parentPath(dir));
    const path = this.#abs(dir);
    const found = lstatSync(path, { throwIfNoEntry: false });
    if (found && !found.isDirectory()) {
      if (!this.#whiteouts.delete(dir)) {
        throw new GcfsError(ErrorCode.HostileTar, `layer entry ${quote(dir)} is not a directory`, {
          details: { entry: dir },
        });
      }
      unlinkSync(path);
    }
    if (!found?.isDirectory()) {
      mkdirSync(path, 0o755);
      this.#implicitMetadata(path);
    }
    this.#dirs.add(dir);
  }

  #implicitMetadata(path: string): void {
    lchownSync(path, 0, 0);
    // mkdir applies the umask and inherits a setgid parent's bit; an implicit dir is exactly 0755.
    chmodSync(path, 0o755);
  }

  /**
   * Run `create` for a new object at `name`; when something is there already (an earlier
   * entry of the same path), remove it first, but keep a directory that a directory replaces.
   */
  #create(name: string, create: (path: string) => void): void {
    const path = this.#abs(name);
    try {
      create(path);
      return;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    if (lstatSync(path).isDirectory()) {
      rmSync(path, { recursive: true });
      for (const dir of this.#dirs) if (dir === name || dir.startsWith(`${name}/`)) this.#dirs.delete(dir);
    } else {
      unlinkSync(path);
      this.#whiteouts.delete(name);
    }
    create(path);
  }

  /** A regular file, its content streamed from `body`; returns the bytes written. */
  async file(entry: TocEntry, body: AsyncIterable<Buffer>, check: () => void): Promise<number> {
    let fd = -1;
    this.#create(entry.name, (path) => {
      fd = openSync(path, CREATE_FILE, 0o600);
    });
    let bytes = 0;
    try {
      for await (const chunk of body) {
        check();
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done);
        bytes += chunk.length;
      }
      if (this.#fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#metadata(entry);
    return bytes;
  }

  dir(entry: TocEntry): void {
    const path = this.#abs(entry.name);
    if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      // A directory listed again keeps its children but takes the new entry's metadata.
      for (const name of llistxattr(path)) if (!entry.xattrs.has(name)) lremovexattr(path, name);
    } else {
      this.#create(entry.name, (at) => mkdirSync(at, 0o700));
    }
    this.#dirs.add(entry.name);
    this.#metadata(entry);
  }

  symlink(entry: TocEntry): void {
    this.#create(entry.name, (path) => symlinkSync(entry.linkName, path));
    this.#metadata(entry);
  }

  /** A hard link shares its target's inode, metadata included: nothing else to set. */
  hardlink(entry: TocEntry): void {
    if (!this.#dirs.has(parentPath(entry.linkName))) {
      throw new GcfsError(
        ErrorCode.HostileTar,
        `hard link ${quote(entry.name)} to ${quote(entry.linkName)}, which is not in the tree`,
        { details: { entry: entry.name } },
      );
    }
    const target = this.#abs(entry.linkName);
    this.#create(entry.name, (path) => linkSync(target, path));
  }

  /** A char or block device, a fifo, or an overlay whiteout (char 0:0, mode 0, as containerd). */
  node(entry: TocEntry): void {
    const whiteout = entry.type === 'whiteout';
    const type = NODE_TYPE[entry.type]!;
    this.#create(entry.name, (path) =>
      whiteout ? mknod(path, type, 0, 0) : mknod(path, type | 0o600, entry.devMajor, entry.devMinor),
    );
    if (whiteout) {
      this.#whiteouts.add(entry.name);
      const path = this.#abs(entry.name);
      lchownSync(path, entry.uid, entry.gid);
      const time = timeOf(entry.mtimeSec, entry.mtimeNsec);
      lutimesSync(path, time, time);
    } else {
      this.#metadata(entry);
    }
  }

  /**
   * Owner, then mode (chown clears setuid/setgid), then xattrs (chown also drops
   * security.capability), then times. Directories get their times in finish(), after their
   * children stopped changing them.
   */
  #metadata(entry: TocEntry): void {
    const path = this.#abs(entry.name);
    lchownSync(path, entry.uid, entry.gid);
    if (entry.type !== 'symlink') chmodSync(path, entry.mode);
    for (const [name, value] of entry.xattrs) lsetxattr(path, name, value);
    if (entry.type !== 'dir') {
      const time = timeOf(entry.mtimeSec, entry.mtimeNsec);
      lutimesSync(path, time, time);
    }
  }

  /**
   * The directories of the finished table of contents: opaque markers as overlay's xattr,
   * then times (implicit ones get the index's mtime 0), then fsync when asked.
   */
  finish(entries: readonly TocEntry[]): void {
    for (const entry of entries) {
      if (entry.type !== 'dir') continue;
      const path = this.#abs(entry.name);
      if (entry.opaque) lsetxattr(path, OPAQUE_XATTR, Buffer.from(OPAQUE_VALUE));
      const time = timeOf(entry.mtimeSec, entry.mtimeNsec);
      lutimesSync(path, time, time);
      if (this.#fsync) {
        const fd = openSync(path, OPEN_DIR);
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    }
  }
}
