// fuse-native (CommonJS, untyped) behind a narrow typed surface, with the mount options it
// does not offer (use_ino so hard links share inode numbers, ro, max_readahead,
// async_read/sync_read) and a getxattr that answers ERANGE when the caller's buffer is short.

import { createRequire } from 'node:module';
import { constants } from 'node:os';
import type { Stat } from './stat.js';

export type Callback<T extends unknown[] = []> = (err: number, ...result: T) => void;

/** The handlers we implement, in fuse-native's shapes (errors are negative errno values). */
export interface FuseOperations {
  init(cb: (err: number) => void): void;
  getattr(path: string, cb: Callback<[Stat?]>): void;
  fgetattr(path: string, fd: number, cb: Callback<[Stat?]>): void;
  readdir(path: string, cb: Callback<[string[]?, Stat[]?]>): void;
  readlink(path: string, cb: Callback<[string?]>): void;
  open(path: string, flags: number, cb: Callback<[number?]>): void;
  opendir(path: string, flags: number, cb: Callback<[number?]>): void;
  /** cb(bytesRead) or cb(-errno). */
  read(
    path: string,
    fd: number,
    buf: Buffer,
    length: number,
    position: number,
    cb: (result: number) => void,
  ): void;
  release(path: string, fd: number, cb: (err: number) => void): void;
  releasedir(path: string, fd: number, cb: (err: number) => void): void;
  getxattr(path: string, name: string, position: number, cb: Callback<[(Buffer | null)?]>): void;
  listxattr(path: string, cb: Callback<[string[]?]>): void;
  statfs(path: string, cb: Callback<[StatFs?]>): void;
  access(path: string, mode: number, cb: (err: number) => void): void;
  [readOnly: string]: unknown;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** fuse-native's own options, plus `extraOptions` appended to its -o list. */
export interface FuseNativeOptions {
  allowOther?: boolean;
  defaultPermissions?: boolean;
  debug?: boolean;
  kernelCache?: boolean;
  fsname?: string;
  subtype?: string;
  maxRead?: number;
  /** Per-operation answer deadline in ms (fuse-native answers ETIMEDOUT after it). */
  timeout?: number;
  extraOptions?: string[];
}

export interface FuseHandle {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

/** What the subclass below uses of fuse-native's (untyped) class. */
interface FuseNativeInstance extends FuseHandle {
  readonly ops: FuseOperations;
  readonly opts: FuseNativeOptions;
  _fuseOptions(): string;
}

interface FuseNativeClass {
  new (mountPoint: string, ops: FuseOperations, options: FuseNativeOptions): FuseNativeInstance;
}

type Signal = (result: number, ...rest: unknown[]) => void;

const FuseNative = createRequire(import.meta.url)('fuse-native') as FuseNativeClass;

/** errno as a FUSE handler returns it: negative. */
export function errno(name: keyof typeof constants.errno): number {
  return -constants.errno[name];
}

class GcfsFuseNative extends FuseNative {
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extra = this.opts.extraOptions ?? [];
    if (extra.length === 0) return base;
    return base === '' ? `-o${extra.join(',')}` : `${base},${extra.join(',')}`;
  }

  /** Called by fuse-native for getxattr; replaces its version, which overruns short buffers. */
  _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer, position: number): void {
    this.ops.getxattr(path, name, position, (err, value) => {
      if (err !== 0) return signal(err, valueBuf.buffer);
      if (!value) return signal(errno('ENODATA'), valueBuf.buffer);
      // A zero-length buffer asks for the size; a short one must not be overrun.
      if (valueBuf.length > 0 && value.length > valueBuf.length)
        return signal(errno('ERANGE'), valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }
}

export function createFuse(mountPoint: string, ops: FuseOperations, options: FuseNativeOptions): FuseHandle {
  return new GcfsFuseNative(mountPoint, ops, options);
}
