import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';

const run = promisify(execFile);

export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/** What a file system object looks like, as far as an image layer can say. */
export interface TreeNode {
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  /** Content length of regular files; 0 for everything else. */
  size: number;
  /** Hex sha256 of a regular file's content (absent with `hashContent: false`). */
  sha256?: string;
  linkTarget?: string;
  rdevMajor?: number;
  rdevMinor?: number;
  /** xattr name → base64 value. */
  xattrs: Record<string, string>;
  /** For files with several links: the first (sorted) path of the same inode. */
  hardlinkGroup?: string;
}

export type TreeField = keyof TreeNode;

/** Relative path (no leading `./`, the root itself excluded) → node, sorted by path. */
export type TreeSnapshot = Map<string, TreeNode>;

export interface SnapshotOptions {
  /** Hash regular files' content (default true). */
  hashContent?: boolean;
}

/** Linux's split of st_rdev into major and minor (glibc's gnu_dev_major/minor). */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function nodeType(st: import('node:fs').BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Walk `dir` with lstat (never following symlinks) and describe every object under it. */
export async function snapshotTree(dir: string, options: SnapshotOptions = {}): Promise<TreeSnapshot> {
  const hashContent = options.hashContent ?? true;
  const found: Array<{ path: string; abs: string; st: import('node:fs').BigIntStats }> = [];
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(rel === '' ? dir : join(dir, rel));
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = join(dir, path);
      const st = await lstat(abs, { bigint: true });
      found.push({ path, abs, st });
      if (st.isDirectory()) await walk(path);
    }
  };
  await walk('');
  found.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));

  const xattrs = await readXattrs(found.map((f) => f.abs));
  const firstOfInode = new Map<string, string>();
  const snapshot: TreeSnapshot = new Map();
  for (const { path, abs, st } of found) {
    const type = nodeType(st);
    const node: TreeNode = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeSec: Number(st.mtimeMs / 1000n),
      size: type === 'file' ? Number(st.size) : 0,
      xattrs: Object.fromEntries(
        Object.entries(xattrs.get(abs) ?? {}).map(([name, value]) => [name, value.toString('base64')]),
      ),
    };
    if (type === 'file' && hashContent) node.sha256 = await sha256File(abs);
    if (type === 'symlink') node.linkTarget = await readlink(abs);
    if (type === 'char' || type === 'block') {
      const { major, minor } = deviceNumbers(st.rdev);
      node.rdevMajor = major;
      node.rdevMinor = minor;
    }
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstOfInode.get(key) ?? path;
      firstOfInode.set(key, first);
      node.hardlinkGroup = first;
    }
    snapshot.set(path, node);
  }
  return snapshot;
}

export interface DiffOptions {
  /** Fields not compared anywhere (e.g. `mtimeSec`). */
  ignoreFields?: readonly TreeField[];
  /** Paths left out of the comparison altogether. */
  ignorePaths?: RegExp;
}

const FIELDS: readonly TreeField[] = [
  'type',
  'mode',
  'uid',
  'gid',
  'mtimeSec',
  'size',
  'sha256',
  'linkTarget',
  'rdevMajor',
  'rdevMinor',
  'xattrs',
  'hardlinkGroup',
];

function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value) ?? 'undefined';
}

function showField(field: TreeField, value: unknown): string {
  return field === 'mode' && typeof value === 'number' ? `0o${value.toString(8)}` : show(value);
}

/** Human-readable differences between two snapshots; empty when they agree. */
export function diffTrees(a: TreeSnapshot, b: TreeSnapshot, options: DiffOptions = {}): string[] {
  const ignored = new Set(options.ignoreFields ?? []);
  const skip = (path: string) => options.ignorePaths?.test(path) ?? false;
  const differences: string[] = [];
  for (const [path, left] of a) {
    if (skip(path)) continue;
    const right = b.get(path);
    if (!right) {
      differences.push(`${path}: only in first tree (${left.type})`);
      continue;
    }
    for (const field of FIELDS) {
      if (ignored.has(field)) continue;
      const l = field === 'xattrs' ? sortedRecord(left.xattrs) : left[field];
      const r = field === 'xattrs' ? sortedRecord(right.xattrs) : right[field];
      if (show(l) !== show(r)) {
        differences.push(`${path}: ${field} ${showField(field, l)} != ${showField(field, r)}`);
      }
    }
  }
  for (const [path, right] of b) {
    if (!skip(path) && !a.has(path)) differences.push(`${path}: only in second tree (${right.type})`);
  }
  return differences;
}

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

// getfattr quotes unprintable bytes of file and attribute names as \ooo and '\' as '\\'.
function unquote(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const octal = text[i] === '\\' ? /^[0-7]{3}/.exec(text.slice(i + 1)) : null;
    if (octal) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else if (text[i] === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(text.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const XATTR_BATCH = 256;

/**
 * Every extended attribute (user, trusted, security, ...) of each path, not following
 * symlinks, with binary-exact values. Node has no xattr API and no native package loads
 * on our runtime without fetching headers, so this runs getfattr (Debian's `attr`) in batches.
 */
export async function readXattrs(paths: readonly string[]): Promise<Map<string, Record<string, Buffer>>> {
  const result = new Map<string, Record<string, Buffer>>();
  for (let start = 0; start < paths.length; start += XATTR_BATCH) {
    const batch = paths.slice(start, start + XATTR_BATCH);
    let stdout: string;
    try {
      ({ stdout } = await run(
        'getfattr',
        ['--no-dereference', '--absolute-names', '--dump', '--match=-', '--encoding=base64', '--', ...batch],
        { maxBuffer: 256 * 1024 * 1024, encoding: 'latin1' },
      ));
    } catch (err) {
      throw new GcfsError(ErrorCode.Internal, 'getfattr failed', {
        cause: err,
        hint: 'getfattr comes with the Debian package attr (scripts/setup installs it)',
      });
    }
    let current: Record<string, Buffer> | undefined;
    for (const line of stdout.split('\n')) {
      if (line.startsWith('# file: ')) {
        current = {};
        result.set(unquote(line.slice('# file: '.length)), current);
      } else if (current && line !== '') {
        const eq = line.indexOf('=');
        const name = unquote(eq < 0 ? line : line.slice(0, eq));
        const value = eq < 0 ? '' : line.slice(eq + 1);
        if (!value.startsWith('0s') && value !== '' && value !== '""') {
          throw new GcfsError(ErrorCode.Internal, `getfattr: unexpected value encoding in ${line}`);
        }
        current[name] = Buffer.from(value.startsWith('0s') ? value.slice(2) : '', 'base64');
      }
    }
  }
  return result;
}

export interface ExtractOptions {
  compression?: 'gzip' | 'zstd' | 'none';
}

/**
 * Extract a tar (or compressed layer blob) with GNU tar as root: numeric owners, modes
 * including special bits, every xattr namespace, devices. The reference we compare against.
 */
export async function gnuTarExtract(
  tarOrBlobPath: string,
  destDir: string,
  options: ExtractOptions = {},
): Promise<void> {
  const compression = { gzip: ['--gzip'], zstd: ['--zstd'], none: [] }[options.compression ?? 'none'];
  await mkdir(destDir, { recursive: true });
  const args = [
    ...compression,
    '--xattrs',
    '--xattrs-include=*',
    '--numeric-owner',
    '--same-owner',
    '-xpf',
    tarOrBlobPath,
    '-C',
    destDir,
  ];
  try {
    await run('/usr/bin/tar', args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new GcfsError(ErrorCode.Internal, `GNU tar failed to extract ${tarOrBlobPath}: ${stderr.trim()}`, {
      cause: err,
    });
  }
}

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

/**
 * A layer's GNU tar extraction as overlayfs must see it from FUSE: `.wh.<name>` files
 * become `<name>` char devices 0:0 with mode 0, opaque markers become the parent's
 * `trusted.overlay.opaque=y`.
 */
export function asLowerLayer(extracted: TreeSnapshot): TreeSnapshot {
  const result: TreeSnapshot = new Map();
  const opaque: string[] = [];
  for (const [path, node] of extracted) {
    const name = basename(path);
    const parent = dirname(path) === '.' ? '' : dirname(path);
    if (name === OPAQUE) opaque.push(parent);
    else if (name.startsWith(WHITEOUT)) {
      const target = parent === '' ? name.slice(WHITEOUT.length) : `${parent}/${name.slice(WHITEOUT.length)}`;
      result.set(target, { ...node, type: 'char', mode: 0, size: 0, rdevMajor: 0, rdevMinor: 0, xattrs: {} });
      delete result.get(target)!.sha256;
    } else result.set(path, node);
  }
  for (const dir of opaque) {
    const node = result.get(dir)!;
    node.xattrs = { ...node.xattrs, 'trusted.overlay.opaque': Buffer.from('y').toString('base64') };
  }
  return new Map([...result].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
