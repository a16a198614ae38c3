import { createHash } from 'node:crypto';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { ErrorCode, GcfsError, quote } from '@gcfs/core';
import type { BlockMeta } from './blocks.js';
import type { LayerIndex } from './indexer.js';
import { normalizeLayerPath, parentPath } from './paths.js';
import { compareNames, type EntryType, type TocEntry } from './toc.js';

// Layout: MAGIC (8 bytes, the last one the format version) | sha256 of the payload (32) |
// payload = zstd(JSON). The digest catches any corruption, the validation below any index
// that is well-formed but inconsistent: a damaged index is an error, never a wrong file.
const MAGIC = Buffer.from('GCFSIDX\x01', 'latin1');
const DIGEST_SIZE = 32;
const MAX_JSON = 2 ** 31;
const ENTRY_TYPES = new Set<EntryType>([
  'file',
  'dir',
  'symlink',
  'hardlink',
  'char',
  'block',
  'fifo',
  'whiteout',
]);

interface StoredEntry extends Omit<TocEntry, 'xattrs'> {
  /** name → base64 value. */
  xattrs: Record<string, string>;
}

interface StoredIndex extends Omit<LayerIndex, 'entries' | 'blocks' | 'compressionPending'> {
  version: 1;
  /** Present (and true) only while every block is raw awaiting compaction: older indexes lack it. */
  compressionPending?: true;
  /** [encoding (0 raw, 1 zstd), compressedSize, uncompressedSize, crc32] */
  blocks: Array<[number, number, number, number]>;
  entries: StoredEntry[];
}

export function serializeLayerIndex(index: LayerIndex): Buffer {
  const stored: StoredIndex = {
    version: 1,
    blockSize: index.blockSize,
    contentSize: index.contentSize,
    tarSize: index.tarSize,
    entryCount: index.entryCount,
    ...(index.compressionPending ? { compressionPending: true } : {}),
    blocks: index.blocks.map((b) => [
      b.encoding === 'zstd' ? 1 : 0,
      b.compressedSize,
      b.uncompressedSize,
      b.crc32,
    ]),
    entries: index.entries.map((entry) => ({
      ...entry,
      xattrs: Object.fromEntries([...entry.xattrs].map(([name, value]) => [name, value.toString('base64')])),
    })),
  };
  const payload = zstdCompressSync(Buffer.from(JSON.stringify(stored)), {
    params: { [constants.ZSTD_c_compressionLevel]: 3 },
  });
  return Buffer.concat([MAGIC, createHash('sha256').update(payload).digest(), payload]);
}

function corrupt(problem: string, cause?: unknown): GcfsError {
  return new GcfsError(ErrorCode.CorruptIndex, `layer index: ${problem}`, { cause });
}

export function deserializeLayerIndex(data: Buffer): LayerIndex {
  if (data.length < MAGIC.length + DIGEST_SIZE || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt('not a gcfs layer index of a version we read');
  }
  const payload = data.subarray(MAGIC.length + DIGEST_SIZE);
  const digest = createHash('sha256').update(payload).digest();
  if (!digest.equals(data.subarray(MAGIC.length, MAGIC.length + DIGEST_SIZE)))
    throw corrupt('checksum mismatch');
  let stored: unknown;
  try {
    stored = JSON.parse(zstdDecompressSync(payload, { maxOutputLength: MAX_JSON }).toString('utf8'));
  } catch (err) {
    throw corrupt('payload does not decode', err);
  }
  return validate(stored);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw corrupt(`${what} is ${JSON.stringify(value)}`);
  }
  return value as number;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw corrupt(`${what} is not a string`);
  return value;
}

function validate(stored: unknown): LayerIndex {
  if (!isRecord(stored) || stored.version !== 1) throw corrupt('unknown payload version');
  const blockSize = integer(stored.blockSize, 'blockSize', 1);
  const contentSize = integer(stored.contentSize, 'contentSize');
  const { blocks: storedBlocks, entries: storedEntries } = stored;
  if (!Array.isArray(storedBlocks) || !Array.isArray(storedEntries))
    throw corrupt('blocks or entries missing');
  const blocks = storedBlocks.map((raw, i) => block(raw, i, blockSize, storedBlocks.length));
  if (blocks.reduce((sum, b) => sum + b.uncompressedSize, 0) !== contentSize) {
    throw corrupt('blocks do not add up to the content size');
  }
  const pending = stored.compressionPending;
  if (pending !== undefined && pending !== true) throw corrupt('compressionPending is not true');
  if (pending && blocks.some((b) => b.encoding !== 'raw')) {
    throw corrupt('compression is pending yet some blocks are compressed');
  }
  const byName = new Map<string, TocEntry>();
  let previous: string | undefined;
  const entries = storedEntries.map((raw) => {
    const entry = tocEntry(raw, contentSize);
    if (
      previous === undefined
        ? entry.name !== '' || entry.type !== 'dir'
        : compareNames(previous, entry.name) >= 0
    ) {
      throw corrupt(`entry ${quote(entry.name)} is out of order or repeated`);
    }
    if (entry.name !== '' && byName.get(parentPath(entry.name))?.type !== 'dir') {
      throw corrupt(`entry ${quote(entry.name)} has no parent directory`);
    }
    byName.set(entry.name, entry);
    previous = entry.name;
    return entry;
  });
  for (const entry of entries) {
    if (entry.type !== 'hardlink') continue;
    const target = byName.get(entry.linkName);
    if (!target || target.type === 'dir' || target.type === 'whiteout') {
      throw corrupt(`hard link ${quote(entry.name)} leads nowhere`);
    }
  }
  return {
    entries,
    blockSize,
    blocks,
    contentSize,
    tarSize: integer(stored.tarSize, 'tarSize'),
    entryCount: integer(stored.entryCount, 'entryCount'),
    ...(pending ? { compressionPending: true } : {}),
  };
}

function block(raw: unknown, i: number, blockSize: number, count: number): BlockMeta {
  if (!Array.isArray(raw) || raw.length !== 4) throw corrupt(`block ${i} is malformed`);
  const encoding = raw[0] === 1 ? 'zstd' : raw[0] === 0 ? 'raw' : undefined;
  if (encoding === undefined) throw corrupt(`block ${i} has an unknown encoding`);
  const uncompressedSize = integer(raw[2], `block ${i} size`, 1, blockSize);
  if (i < count - 1 && uncompressedSize !== blockSize) throw corrupt(`block ${i} is short but not the last`);
  const compressedSize = integer(raw[1], `block ${i} stored size`, 1);
  if (encoding === 'raw' && compressedSize !== uncompressedSize)
    throw corrupt(`raw block ${i} has two sizes`);
  return {
    encoding,
    compressedSize,
    uncompressedSize,
    crc32: integer(raw[3], `block ${i} crc32`, 0, 0xffffffff),
  };
}

function tocEntry(raw: unknown, contentSize: number): TocEntry {
  if (!isRecord(raw)) throw corrupt('an entry is not an object');
  const name = text(raw.name, 'entry name');
  const what = `entry ${quote(name)}`;
  let normal: string | undefined;
  try {
    normal = normalizeLayerPath(name);
  } catch {}
  if (normal !== name) throw corrupt(`${what} is not a normalised path`);
  const type = raw.type as EntryType;
  if (!ENTRY_TYPES.has(type)) throw corrupt(`${what} has an unknown type`);
  if (!isRecord(raw.xattrs)) throw corrupt(`${what} has malformed xattrs`);
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(raw.xattrs))
    xattrs.set(key, Buffer.from(text(value, `${what} xattr`), 'base64'));
  const entry: TocEntry = {
    name,
    type,
    mode: integer(raw.mode, `${what} mode`, 0, 0o7777),
    uid: integer(raw.uid, `${what} uid`),
    gid: integer(raw.gid, `${what} gid`),
    uname: text(raw.uname, `${what} uname`),
    gname: text(raw.gname, `${what} gname`),
    size: integer(raw.size, `${what} size`),
    mtimeSec: integer(raw.mtimeSec, `${what} mtime`, Number.MIN_SAFE_INTEGER),
    mtimeNsec: integer(raw.mtimeNsec, `${what} mtime`, 0, 999_999_999),
    linkName: text(raw.linkName, `${what} link name`),
    devMajor: integer(raw.devMajor, `${what} device`),
    devMinor: integer(raw.devMinor, `${what} device`),
    xattrs,
    opaque: raw.opaque === true,
    implicit: raw.implicit === true,
    contentOffset: integer(raw.contentOffset, `${what} content offset`),
  };
  const hasContent = type === 'file' || type === 'hardlink';
  if ((!hasContent && entry.size !== 0) || entry.contentOffset + entry.size > contentSize) {
    throw corrupt(`${what} has content outside the layer`);
  }
  if (entry.opaque && type !== 'dir') throw corrupt(`${what} is opaque but not a directory`);
  if ((type === 'symlink' || type === 'hardlink') !== (entry.linkName !== ''))
    throw corrupt(`${what} has a wrong link`);
  return entry;
}
