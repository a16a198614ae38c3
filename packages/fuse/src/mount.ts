// Mounting and unmounting: a stale mount at the same path (a crashed gcfsd leaves one
// that hangs every reader) is aborted and lazily unmounted first; unmount is clean.

import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError, PRIVATE_DIR_MODE } from '@gcfs/core';
import {
  type ContentOptions,
  ContentReader,
  type ContentStats,
  DEFAULT_CONTENT_OPTIONS,
  type PrefetchResult,
} from './content.js';
import type { FuseEvents } from './events.js';
import { createFuse, type FuseHandle } from './fuse-native.js';
import { Operations } from './operations.js';
import { GcfsTree } from './tree.js';

const run = promisify(execFile);
const FUSECTL = '/sys/fs/fuse/connections';

export interface MountOptions {
  mountPoint: string;
  /** FUSE async_read (--async_read); sync_read when false. Default true. */
  asyncRead?: boolean;
  /** FUSE max_readahead in bytes (--max_read_ahead); 0 or less keeps the kernel's default. Default 1 MiB. */
  maxReadAhead?: number;
  /** libfuse's request trace on stderr (--fuse_debug). */
  debug?: boolean;
  /**
   * Let the kernel keep file content across opens, and names and attributes for
   * `attrTimeoutSeconds`: layers never change, so each stat or re-read need not come back to
   * the JS thread (~80 µs a request). Default true; tests of our own content cache turn it off.
   */
  kernelCache?: boolean;
  /** entry_timeout and attr_timeout of the mount, in seconds. Default 30. */
  attrTimeoutSeconds?: number;
  content?: Partial<ContentOptions>;
  /** Also serve `flattened/<image dir>/`, the merged view of each image (--flatten_images). */
  flattenImages?: boolean;
}

export interface MountStats extends ContentStats {
  openFiles: number;
}

/** A mounted gcfs tree. `tree` is the daemon's handle to add layers and images. */
export class GcfsMount extends EventEmitter<FuseEvents> {
  readonly mountPoint: string;
  readonly tree: GcfsTree;
  readonly #content: ContentReader;
  readonly #operations: Operations;
  #fuse: FuseHandle | undefined;

  constructor(mountPoint: string, content: ContentOptions, options: { flattenImages?: boolean } = {}) {
    super();
    this.mountPoint = mountPoint;
    this.tree = new GcfsTree({ flatten: options.flattenImages ?? false });
    this.#content = new ContentReader(content, (layer) => this.tree.remoteOf(layer), this);
    this.#operations = new Operations(this.tree, this.#content, this);
  }

  stats(): MountStats {
    return { ...this.#content.stats(), openFiles: this.#operations.openFiles };
  }

  /**
   * Load blocks of a streamed layer into the content cache (see ContentReader.prefetch):
   * a later read of them is a cache hit. Unmount stops it with ERR_ABORTED.
   */
  prefetch(layer: string, first: number, count: number): Promise<PrefetchResult> {
    return this.#content.prefetch(layer, first, count);
  }

  /** Made by mountGcfs. */
  async mount(options: MountOptions, content: ContentOptions): Promise<void> {
    // Not passed at all when not positive: max_readahead=0 would turn read-ahead off, and
    // libfuse refuses a negative value.
    const maxReadAhead = options.maxReadAhead ?? 1024 * 1024;
    const fuse = createFuse(this.mountPoint, this.#operations.handlers(), {
      allowOther: true,
      defaultPermissions: true,
      debug: options.debug ?? false,
      kernelCache: options.kernelCache ?? true,
      fsname: 'gcfs',
      subtype: 'gcfs',
      // Our own deadline answers EIO first; fuse-native's is the last resort.
      timeout: content.fetchTimeoutMs * 2 + 5_000,
      extraOptions: [
        'ro',
        'use_ino',
        ...(maxReadAhead > 0 ? [`max_readahead=${maxReadAhead}`] : []),
        `entry_timeout=${options.attrTimeoutSeconds ?? 30}`,
        `attr_timeout=${options.attrTimeoutSeconds ?? 30}`,
        options.asyncRead === false ? 'sync_read' : 'async_read',
      ],
    });
    await new Promise<void>((done, fail) => fuse.mount((err) => (err ? fail(err) : done())));
    this.#fuse = fuse;
  }

  /** Unmount (lazily: readers still inside see their files go away) and close local files. */
  async unmount(): Promise<void> {
    const fuse = this.#fuse;
    this.#fuse = undefined;
    this.#content.close();
    if (fuse) {
      try {
        await new Promise<void>((done, fail) => fuse.unmount((err) => (err ? fail(err) : done())));
      } catch (err) {
        throw new GcfsError(ErrorCode.Internal, `cannot unmount ${this.mountPoint}`, { cause: err });
      }
    }
    await this.#operations.closeAll();
  }
}

/** Clean up a stale mount at `mountPoint`, create it if missing, and mount the gcfs tree there. */
export async function mountGcfs(options: MountOptions): Promise<GcfsMount> {
  const content: ContentOptions = { ...DEFAULT_CONTENT_OPTIONS, ...options.content };
  if (!Number.isInteger(content.maxReadBlocks) || content.maxReadBlocks < 1) {
    throw new GcfsError(ErrorCode.InvalidArgument, `maxReadBlocks must be a positive integer`);
  }
  const mountPoint = await canonical(options.mountPoint);
  await cleanStaleMount(mountPoint);
  await mkdir(mountPoint, { recursive: true, mode: PRIVATE_DIR_MODE });
  const mounted = new GcfsMount(mountPoint, content, { flattenImages: options.flattenImages });
  try {
    await mounted.mount(options, content);
  } catch (err) {
    throw new GcfsError(ErrorCode.Internal, `cannot mount gcfs at ${mountPoint}`, {
      cause: err,
      hint: 'gcfsd needs root (or allow_other in /etc/fuse.conf), /dev/fuse and libfuse2',
    });
  }
  return mounted;
}

/** The path as /proc/self/mountinfo shows it, without touching the (maybe dead) mount itself. */
async function canonical(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return join(await realpath(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

interface MountEntry {
  /** major:minor of the mounted file system. */
  device: string;
  fsType: string;
}

/** Mounts stacked at `mountPoint`, topmost last. */
async function mountsAt(mountPoint: string): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const found: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    // mountinfo escapes space, tab, newline and backslash as octal.
    const point = fields[4]?.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(Number.parseInt(octal, 8)),
    );
    if (point === mountPoint && dash > 0)
      found.push({ device: fields[2] ?? '', fsType: fields[dash + 1] ?? '' });
  }
  return found;
}

/** Whether a FUSE file system is mounted at `mountPoint` (read from mountinfo, not the mount). */
export async function isFuseMounted(mountPoint: string): Promise<boolean> {
  return (await mountsAt(await canonical(mountPoint))).some((mount) => mount.fsType.startsWith('fuse'));
}

/**
 * Make `mountPoint` a plain directory again: abort the FUSE connection of any mount there
 * (so that hung readers get ENOTCONN), then unmount it lazily. True when something was cleaned.
 */
export async function cleanStaleMount(mountPoint: string): Promise<boolean> {
  const path = await canonical(mountPoint);
  let cleaned = false;
  for (let attempt = 0; attempt < 8; attempt++) {
    const mounts = await mountsAt(path);
    if (mounts.length === 0) return cleaned;
    for (const mount of mounts) {
      if (mount.fsType.startsWith('fuse')) await abortConnection(mount.device);
    }
    try {
      await run('umount', ['-l', path]);
    } catch (err) {
      throw new GcfsError(ErrorCode.Internal, `cannot unmount the stale mount at ${path}`, { cause: err });
    }
    cleaned = true;
  }
  throw new GcfsError(ErrorCode.Internal, `${path} stays mounted after repeated unmounts`);
}

/** Abort a FUSE connection through fusectl (mounted here if it is not yet). */
async function abortConnection(device: string): Promise<void> {
  const minor = device.split(':')[1];
  if (minor === undefined) return;
  try {
    if ((await readdir(FUSECTL)).length === 0) await run('mount', ['-t', 'fusectl', 'none', FUSECTL]);
    await writeFile(join(FUSECTL, minor, 'abort'), '1');
  } catch {
    // Best effort: the lazy unmount that follows still detaches the mount.
  }
}

/** The gcfsd flags that configure the mount, as packages/gcfsd/src/flags.ts names them. */
export interface MountFlags {
  mount_point: string;
  async_read: boolean;
  max_read_ahead: number;
  fuse_debug: boolean;
  max_read_blocks: number;
  fail_on_max_read_blocks: boolean;
  max_content_cache_size_mb: number;
  flatten_images: boolean;
}

export function mountOptionsFromFlags(flags: MountFlags): MountOptions {
  return {
    mountPoint: flags.mount_point,
    asyncRead: flags.async_read,
    maxReadAhead: flags.max_read_ahead,
    debug: flags.fuse_debug,
    flattenImages: flags.flatten_images,
    content: {
      maxReadBlocks: flags.max_read_blocks,
      failOnMaxReadBlocks: flags.fail_on_max_read_blocks,
      cacheBytes: flags.max_content_cache_size_mb * 1024 * 1024,
    },
  };
}
