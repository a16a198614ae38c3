/**
 * The file-system calls Node lacks, for laying out overlayfs lower dirs: mknod (devices,
 * fifos, OCI whiteouts as char 0:0) and extended attributes on a path itself, never
 * following a symlink. Failed calls throw errors shaped like fs's (code, errno, syscall,
 * path); every call has a synchronous form and an async one that runs on the libuv pool.
 */
import { constants } from 'node:fs';
import { createRequire } from 'node:module';
import { ErrorCode, GcfsError } from '@gcfs/core';

/** How lsetxattr treats an existing attribute: by default it creates or replaces. */
export type XattrFlag = 'create' | 'replace';

/** What addon/fs_calls.c exports; its flags are XATTR_CREATE (1) and XATTR_REPLACE (2). */
interface Binding {
  mknod(path: string, mode: number, major: number, minor: number): void;
  mknodAsync(path: string, mode: number, major: number, minor: number): Promise<void>;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lsetxattrAsync(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  lgetxattr(path: string, name: string): Buffer | undefined;
  lgetxattrAsync(path: string, name: string): Promise<Buffer | undefined>;
  llistxattr(path: string): string[];
  llistxattrAsync(path: string): Promise<string[]>;
  lremovexattr(path: string, name: string): void;
  lremovexattrAsync(path: string, name: string): Promise<void>;
}

const ADDON = '../../build/Release/gcfs_native.node';

function load(): Binding {
  try {
    return createRequire(import.meta.url)(ADDON) as Binding;
  } catch (cause) {
    throw new GcfsError(ErrorCode.Internal, `the @gcfs/native addon cannot be loaded (${ADDON})`, {
      cause,
      hint: 'build it with `npm run build` (needs python3, make and a C compiler: scripts/setup)',
    });
  }
}

const binding = load();

const XATTR_FLAGS: Record<XattrFlag, number> = { create: 1, replace: 2 };
const NODE_TYPES = new Set([constants.S_IFCHR, constants.S_IFBLK, constants.S_IFIFO]);
const MAX_DEV_PART = 0xffff_ffff;

function checkString(what: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw new GcfsError(ErrorCode.InvalidArgument, `${what} must be a non-empty string without NUL bytes`);
  }
}

function checkMknod(path: string, mode: number, major: number, minor: number): void {
  checkString('path', path);
  if (!Number.isInteger(mode) || !NODE_TYPES.has(mode & constants.S_IFMT) || mode > 0o177777) {
    throw new GcfsError(ErrorCode.InvalidArgument, `mknod mode ${mode} is not S_IFCHR, S_IFBLK or S_IFIFO`, {
      details: { path },
    });
  }
  for (const [what, n] of [
    ['major', major],
    ['minor', minor],
  ] as const) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_DEV_PART) {
      throw new GcfsError(ErrorCode.InvalidArgument, `mknod ${what} ${n} is not a 32-bit unsigned integer`);
    }
  }
}

function checkXattr(path: string, name: string): void {
  checkString('path', path);
  checkString('xattr name', name);
}

function xattrFlags(flags: XattrFlag | undefined): number {
  return flags === undefined ? 0 : XATTR_FLAGS[flags];
}

/**
 * Creates a char or block device or a fifo. `mode` is the type (S_IFCHR, S_IFBLK, S_IFIFO)
 * plus permission bits, which the process umask narrows as for mknod(2): chmod afterwards
 * for exact bits. The device number is glibc's makedev(major, minor).
 */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  checkMknod(path, mode, major, minor);
  binding.mknod(path, mode, major, minor);
}

export async function mknodAsync(path: string, mode: number, major = 0, minor = 0): Promise<void> {
  checkMknod(path, mode, major, minor);
  await binding.mknodAsync(path, mode, major, minor);
}

/** Sets an extended attribute on `path` itself (a symlink is not followed). */
export function lsetxattr(path: string, name: string, value: Buffer, flags?: XattrFlag): void {
  checkXattr(path, name);
  binding.lsetxattr(path, name, value, xattrFlags(flags));
}

export async function lsetxattrAsync(
  path: string,
  name: string,
  value: Buffer,
  flags?: XattrFlag,
): Promise<void> {
  checkXattr(path, name);
  await binding.lsetxattrAsync(path, name, value, xattrFlags(flags));
}

/** The attribute's value, or undefined when `path` has no such attribute (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  checkXattr(path, name);
  return binding.lgetxattr(path, name);
}

export async function lgetxattrAsync(path: string, name: string): Promise<Buffer | undefined> {
  checkXattr(path, name);
  return await binding.lgetxattrAsync(path, name);
}

/** The names of the attributes of `path` itself, in the kernel's order. */
export function llistxattr(path: string): string[] {
  checkString('path', path);
  return binding.llistxattr(path);
}

export async function llistxattrAsync(path: string): Promise<string[]> {
  checkString('path', path);
  return await binding.llistxattrAsync(path);
}

/** Removes an attribute; ENODATA when there is none. */
export function lremovexattr(path: string, name: string): void {
  checkXattr(path, name);
  binding.lremovexattr(path, name);
}

export async function lremovexattrAsync(path: string, name: string): Promise<void> {
  checkXattr(path, name);
  await binding.lremovexattrAsync(path, name);
}

/** glibc's makedev (sys/sysmacros.h): the dev_t that mknod receives and lstat reports as rdev. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}

/** glibc's major(): the major number of an lstat rdev (a number, or a bigint from bigint stats). */
export function major(rdev: number | bigint): number {
  const dev = BigInt(rdev);
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
}

/** glibc's minor(). */
export function minor(rdev: number | bigint): number {
  const dev = BigInt(rdev);
  return Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
}
