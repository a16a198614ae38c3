// The FUSE handlers: lookups in the tree, reads through the content path, every write
// refused with EROFS. fuse-native calls them on the main thread: nothing here blocks,
// and every handler answers exactly once, errors included.

import type { EventEmitter } from 'node:events';
import { type FileHandle, open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { type ContentReader, readLocal } from './content.js';
import type { FuseEvents } from './events.js';
import { errno, type FuseOperations, type StatFs } from './fuse-native.js';
import type { FsNode, GcfsTree } from './tree.js';

const O_ACCMODE = 3;
const W_OK = 2;
const NAME_MAX = 255;

/** An open layer file; `local` is its file in the layer's local copy once one is open. */
interface OpenFile {
  file: NonNullable<FsNode['file']>;
  local?: FileHandle;
}

/** Operations that would change the tree: all refused on this read-only file system. */
const WRITE_OPERATIONS = [
  'write',
  'truncate',
  'ftruncate',
  'create',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
  'mknod',
  'setxattr',
  'removexattr',
  'chmod',
  'chown',
  'utimens',
] as const;

export class Operations {
  readonly #tree: GcfsTree;
  readonly #content: ContentReader;
  readonly #events: EventEmitter<FuseEvents>;
  readonly #open = new Map<number, OpenFile>();
  #nextFd = 1;

  constructor(tree: GcfsTree, content: ContentReader, events: EventEmitter<FuseEvents>) {
    this.#tree = tree;
    this.#content = content;
    this.#events = events;
  }

  get openFiles(): number {
    return this.#open.size;
  }

  /** Close local files still open (at unmount). */
  async closeAll(): Promise<void> {
    const files = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(files.map((file) => file.local?.close()));
  }

  handlers(): FuseOperations {
    const lookup = (path: string) => this.#tree.lookup(path);
    const ops: FuseOperations = {
      init: (cb) => cb(0),
      getattr: (path, cb) => {
        const node = lookup(path);
        return node ? cb(0, node.stat) : cb(errno('ENOENT'));
      },
      fgetattr: (path, _fd, cb) => ops.getattr(path, cb),
      readdir: (path, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        if (!node.children) return cb(errno('ENOTDIR'));
        // The stats give the kernel each entry's type: overlayfs needs it to see whiteouts.
        const entries = node.children();
        const names = ['.', '..', ...entries.map(([name]) => name)];
        const stats = [node.stat, node.stat, ...entries.map(([, stat]) => stat)];
        return cb(0, names, stats);
      },
      readlink: (path, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        return node.linkTarget === undefined ? cb(errno('EINVAL')) : cb(0, node.linkTarget);
      },
      open: (path, flags, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        if ((flags & O_ACCMODE) !== 0) return cb(errno('EROFS'));
        if (!node.file) return cb(errno(node.children ? 'EISDIR' : 'EINVAL'));
        const fd = this.#nextFd++;
        this.#open.set(fd, { file: node.file });
        return cb(0, fd);
      },
      opendir: (path, _flags, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        return node.children ? cb(0, 0) : cb(errno('ENOTDIR'));
      },
      read: (_path, fd, buf, length, position, cb) => {
        const open = this.#open.get(fd);
        if (!open) return cb(errno('EBADF'));
        this.#read(open, buf, length, position).then(cb, (err: unknown) => {
          const error =
            err instanceof GcfsError
              ? err
              : new GcfsError(ErrorCode.Internal, `read of ${open.file.path} failed`, { cause: err });
          this.#events.emit('readError', { layer: open.file.layer.tree.digest, path: open.file.path, error });
          cb(errno('EIO'));
        });
      },
      release: (_path, fd, cb) => {
        const open = this.#open.get(fd);
        this.#open.delete(fd);
        if (!open?.local) return cb(0);
        open.local.close().then(
          () => cb(0),
          () => cb(0),
        );
      },
      releasedir: (_path, _fd, cb) => cb(0),
      getxattr: (path, name, _position, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        return cb(0, node.xattrs?.get(name) ?? null);
      },
      listxattr: (path, cb) => {
        const node = lookup(path);
        if (!node) return cb(errno('ENOENT'));
        return cb(0, [...(node.xattrs?.keys() ?? [])]);
      },
      statfs: (_path, cb) => cb(0, this.#statfs()),
      access: (path, mode, cb) => {
        if (!lookup(path)) return cb(errno('ENOENT'));
        return cb((mode & W_OK) !== 0 ? errno('EROFS') : 0);
      },
    };
    for (const name of WRITE_OPERATIONS) {
      // fuse-native passes the callback last, whatever the operation's arguments.
      ops[name] = (...args: unknown[]) => (args.at(-1) as (err: number) => void)(errno('EROFS'));
    }
    return ops;
  }

  async #read(open: OpenFile, buf: Buffer, length: number, position: number): Promise<number> {
    const started = performance.now();
    const { layer, path, inode } = open.file;
    const local = await this.#localFile(open);
    const bytes = local
      ? await readLocal(local, buf, Math.min(length, Math.max(0, inode.stat.size - position)), position)
      : await this.#content.readRemote(
          {
            layer: layer.tree.digest,
            blockSize: layer.tree.header.blockSize,
            contentOffset: inode.entry.contentOffset,
            size: inode.stat.size,
          },
          buf,
          length,
          position,
        );
    this.#events.emit('read', {
      layer: layer.tree.digest,
      path,
      offset: position,
      bytes,
      source: local ? 'local' : 'remote',
      ms: performance.now() - started,
    });
    return bytes;
  }

  /** The file in the layer's local copy, opened on the first read after the layer went local. */
  async #localFile(open: OpenFile): Promise<FileHandle | undefined> {
    if (open.local) return open.local;
    const dir = this.#tree.localDir(open.file.layer.tree.digest);
    if (dir === undefined) return undefined;
    try {
      const handle = await openFile(join(dir, open.file.path), 'r');
      // Two reads may race to open it: keep one handle.
      if (open.local) {
        await handle.close();
        return open.local;
      }
      open.local = handle;
      return handle;
    } catch {
      // The copy is gone or incomplete: the backend still has the content.
      return undefined;
    }
  }

  #statfs(): StatFs {
    const { bytes, files } = this.#tree.totals();
    const blocks = Math.ceil(bytes / 4096);
    return {
      bsize: 4096,
      frsize: 4096,
      blocks,
      bfree: 0,
      bavail: 0,
      files,
      ffree: 0,
      favail: 0,
      fsid: 0,
      flag: 0,
      namemax: NAME_MAX,
    };
  }
}
