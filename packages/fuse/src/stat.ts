// The stat structure as fuse-native carries it to the kernel. fuse-native packs every
// field into 32 bits (64 for size, blocks and times) and times in milliseconds, so
// nanoseconds below the millisecond and device numbers above 32 bits cannot be shown.

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** What fuse-native's getattr and readdir callbacks take. */
export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  /** Milliseconds since the epoch. */
  atime: number;
  mtime: number;
  ctime: number;
}

export const BLOCK_SIZE = 4096;

/** glibc's makedev, kept unsigned; fuse-native passes the low 32 bits. */
export function makeDev(major: number, minor: number): number {
  return ((major & 0xfff) * 0x100 + (minor & 0xff) + (minor & ~0xff) * 0x1000) >>> 0;
}

export interface StatFields {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev?: number;
  mtimeMs: number;
}

export function makeStat(fields: StatFields): Stat {
  return {
    mode: fields.mode,
    uid: fields.uid,
    gid: fields.gid,
    size: fields.size,
    nlink: fields.nlink,
    ino: fields.ino,
    rdev: fields.rdev ?? 0,
    blksize: BLOCK_SIZE,
    // st_blocks counts 512-byte units.
    blocks: Math.ceil(fields.size / 512),
    atime: fields.mtimeMs,
    mtime: fields.mtimeMs,
    ctime: fields.mtimeMs,
  };
}
