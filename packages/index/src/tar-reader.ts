import { ErrorCode, GcfsError, isGcfsError, quote } from '@gcfs/core';
import { ByteSource, type ChunkSource } from './byte-source.js';
import { normalizeLayerPath } from './paths.js';
import { parsePaxRecords, paxInteger, paxTime, paxXattrs } from './pax.js';
import {
  BLOCK,
  decodeHeader,
  decodeText,
  isZeroBlock,
  type Place,
  type RawHeader,
  tarError,
} from './tar-header.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One tar member with PAX records and GNU long names applied. */
export interface TarEntryHeader {
  /** Normalised (see normalizeLayerPath): no leading `/` or `./`, no trailing `/`; root is `''`. */
  name: string;
  type: TarEntryType;
  /** Permission bits, setuid/setgid/sticky included (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of content; 0 for everything but regular files. */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** Symlink target as written; hard link target normalised like `name`; '' otherwise. */
  linkName: string;
  devMajor: number;
  devMinor: number;
  /** Extended attributes with their exact bytes. */
  xattrs: Map<string, Buffer>;
  /** Offset in the tar of the member's first header block (extension headers included). */
  headerOffset: number;
  /** Offset in the tar of the member's content. */
  dataOffset: number;
}

export interface TarEntry extends TarEntryHeader {
  /**
   * The content, read once while this entry is current. Whatever is not consumed is skipped
   * when the reader moves to the next entry; reading it after that is an error.
   */
  body: AsyncIterable<Buffer>;
}

export interface TarReaderOptions {
  /** Members (not counting PAX/GNU extension headers) before the tar is refused; default 2,000,000. */
  maxEntries?: number;
  /** Bytes of PAX records and GNU long names for one member, and of global PAX records; default 8 MiB. */
  maxHeaderSize?: number;
}

export const DEFAULT_MAX_ENTRIES = 2_000_000;
export const DEFAULT_MAX_HEADER_SIZE = 8 << 20;

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere that matters
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Records of a global header that would be absurd for every later member. */
const NOT_GLOBAL = new Set(['path', 'linkpath', 'size']);

/** Extension headers waiting for the member they describe. */
interface Pending {
  pax: Map<string, Buffer>;
  longName?: string;
  longLink?: string;
  bytes: number;
  first?: Place;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * A streaming reader of ustar, POSIX pax (`x`, `g`), GNU (`L`, `K`, base-256 numbers) and v7
 * archives that refuses hostile input with stable codes: ERR_BAD_LAYER (malformed,
 * truncated), ERR_HOSTILE_TAR (escaping paths, NULs, dangling hard links, limits) and
 * ERR_UNSUPPORTED_TAR_ENTRY (sparse files and other types). Iterate it once.
 */
export class TarReader implements AsyncIterable<TarEntry> {
  readonly #source: ByteSource;
  readonly #maxEntries: number;
  readonly #maxHeaderSize: number;
  /** Type of every member so far, for hard link checks (later members replace earlier). */
  readonly #seen = new Map<string, TarEntryType>();
  #current: Place | undefined;
  #remaining = 0;
  #padding = 0;
  #generation = 0;

  constructor(source: ChunkSource, options: TarReaderOptions = {}) {
    this.#source = new ByteSource(source);
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  }

  /** Bytes of the tar read so far; after iteration, its whole size (trailing blocks included). */
  get bytesRead(): number {
    return this.#source.position;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TarEntry> {
    const source = this.#source;
    const global: Pending = { pax: new Map(), bytes: 0 };
    let pending: Pending = { pax: new Map(), bytes: 0 };
    let members = 0;
    try {
      for (;;) {
        await this.#finishMember();
        const offset = source.position;
        const block = await source.read(BLOCK);
        if (block.length > 0 && block.length < BLOCK) {
          throw tarError(
            ErrorCode.BadLayer,
            pending.first ?? { name: '', offset },
            'archive truncated in a header',
          );
        }
        // GNU tar ends at the first zero block, and accepts an archive with no trailer at all.
        if (block.length === 0 || isZeroBlock(block)) {
          if (pending.first) {
            throw tarError(ErrorCode.BadLayer, pending.first, 'archive ends after an extension header');
          }
          await source.drain();
          return;
        }
        const raw = decodeHeader(block, offset);
        const place: Place = { name: raw.name, offset };
        if ('xLK'.includes(raw.typeflag)) pending.first ??= place;
        switch (raw.typeflag) {
          case 'x':
            parsePaxRecords(await this.#readExtension(raw.size, place, pending), place, pending.pax);
            continue;
          case 'g':
            parsePaxRecords(await this.#readExtension(raw.size, place, global), place, global.pax);
            continue;
          case 'L':
            pending.longName = longName(await this.#readExtension(raw.size, place, pending), place);
            continue;
          case 'K':
            pending.longLink = longName(await this.#readExtension(raw.size, place, pending), place);
            continue;
        }
        const header = this.#member(raw, pending, global.pax, source.position);
        pending = { pax: new Map(), bytes: 0 };
        if (++members > this.#maxEntries) {
          throw tarError(ErrorCode.HostileTar, place, `more than ${this.#maxEntries} entries`);
        }
        this.#seen.set(header.name, header.type);
        this.#current = { name: header.name, offset: header.headerOffset };
        this.#remaining = header.size;
        this.#padding = padding(header.size);
        yield { ...header, body: this.#body(++this.#generation, this.#current) };
      }
    } finally {
      this.#generation++;
      await source.close();
    }
  }

  /** Skip what is left of the current member's content and padding. */
  async #finishMember(): Promise<void> {
    const place = this.#current;
    if (!place) return;
    this.#generation++;
    const wanted = this.#remaining + this.#padding;
    this.#current = undefined;
    if ((await this.#source.skip(wanted)) < wanted) throw truncated(place);
    this.#remaining = 0;
  }

  async *#body(generation: number, place: Place): AsyncGenerator<Buffer> {
    for (;;) {
      if (generation !== this.#generation) {
        throw new GcfsError(ErrorCode.Internal, `content of tar entry ${quote(place.name)} read too late`);
      }
      if (this.#remaining === 0) return;
      const chunk = await this.#source.next(this.#remaining);
      if (chunk === undefined) throw truncated(place);
      this.#remaining -= chunk.length;
      yield chunk;
    }
  }

  /** The data of a PAX or GNU long-name header, within the size budget. */
  async #readExtension(size: number, place: Place, budget: Pending): Promise<Buffer> {
    budget.bytes += size;
    if (budget.bytes > this.#maxHeaderSize) {
      throw tarError(
        ErrorCode.HostileTar,
        place,
        `extension headers of ${budget.bytes} bytes exceed the limit of ${this.#maxHeaderSize}`,
      );
    }
    // A copy: PAX values are kept as views of it, and a source may reuse its buffers.
    const data = Buffer.from(await this.#source.read(size));
    if (data.length < size || (await this.#source.skip(padding(size))) < padding(size))
      throw truncated(place);
    return data;
  }

  #member(raw: RawHeader, pending: Pending, global: Map<string, Buffer>, dataOffset: number): TarEntryHeader {
    const records = new Map([...global].filter(([key]) => !NOT_GLOBAL.has(key)));
    for (const [key, value] of pending.pax) records.set(key, value);
    const headerOffset = pending.first?.offset ?? dataOffset - BLOCK;
    const place: Place = { name: raw.name, offset: headerOffset };
    const text = (key: string, fallback: string) => {
      const value = records.get(key);
      return value === undefined || value.length === 0 ? fallback : decodeText(value, place, `PAX ${key}`);
    };
    const rawName = text('path', pending.longName ?? raw.name);
    place.name = rawName;
    if (raw.typeflag === 'S' || [...records.keys()].some((key) => key.startsWith('GNU.sparse.'))) {
      throw tarError(ErrorCode.UnsupportedTarEntry, place, 'sparse files are not supported');
    }
    let type = TYPES[raw.typeflag];
    if (type === undefined) {
      throw tarError(
        ErrorCode.UnsupportedTarEntry,
        place,
        `entry type ${quote(raw.typeflag)} is not supported`,
      );
    }
    // Old tars mark directories with a trailing slash only (GNU tar extracts them as such).
    if (type === 'file' && rawName.endsWith('/')) type = 'dir';
    const name = normalized(rawName, place);
    const number = (key: string, fallback: number) => {
      const value = records.get(key);
      return value === undefined || value.length === 0 ? fallback : paxInteger(value, key, place);
    };
    const size = number('size', raw.size);
    if (type !== 'file' && size !== 0) {
      throw tarError(ErrorCode.BadLayer, place, `a ${type} entry cannot carry ${size} bytes of data`);
    }
    if (name === '' && type !== 'dir')
      throw tarError(ErrorCode.HostileTar, place, 'the root must be a directory');
    const mtime = records.get('mtime');
    const time = mtime?.length ? paxTime(mtime, 'mtime', place) : { sec: raw.mtime, nsec: 0 };
    const device = type === 'char' || type === 'block';
    return {
      name,
      type,
      mode: raw.mode,
      uid: number('uid', raw.uid),
      gid: number('gid', raw.gid),
      uname: text('uname', raw.uname),
      gname: text('gname', raw.gname),
      size,
      mtimeSec: time.sec,
      mtimeNsec: time.nsec,
      linkName: this.#linkName(type, text('linkpath', pending.longLink ?? raw.linkName), place),
      devMajor: device ? raw.devMajor : 0,
      devMinor: device ? raw.devMinor : 0,
      xattrs: paxXattrs(records, place),
      headerOffset,
      dataOffset,
    };
  }

  #linkName(type: TarEntryType, link: string, place: Place): string {
    if (type === 'symlink') {
      if (link === '') throw tarError(ErrorCode.BadLayer, place, 'symlink with an empty target');
      if (link.includes('\0'))
        throw tarError(ErrorCode.HostileTar, place, 'symlink target contains a NUL byte');
      return link;
    }
    if (type !== 'hardlink') return '';
    const target = normalized(link, place);
    const targetType = this.#seen.get(target);
    if (target === '' || targetType === undefined || targetType === 'dir') {
      throw tarError(
        ErrorCode.HostileTar,
        place,
        `hard link to ${quote(link)}, which is not an earlier non-directory entry`,
      );
    }
    return target;
  }
}

function normalized(raw: string, place: Place): string {
  try {
    return normalizeLayerPath(raw);
  } catch (err) {
    if (isGcfsError(err)) throw tarError(err.code, place, err.message, err);
    throw err;
  }
}

/** GNU long names are NUL-terminated; a NUL inside is an attempt to hide part of a name. */
function longName(data: Buffer, place: Place): string {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  const name = decodeText(data.subarray(0, end), place, 'GNU long name');
  if (name.includes('\0')) throw tarError(ErrorCode.HostileTar, place, 'GNU long name contains a NUL byte');
  return name;
}

function truncated(place: Place): GcfsError {
  return tarError(ErrorCode.BadLayer, place, 'archive truncated (content or padding missing)');
}

/** Read a tar: `for await (const entry of readTar(stream)) { for await (const chunk of entry.body) ... }`. */
export function readTar(source: ChunkSource, options?: TarReaderOptions): TarReader {
  return new TarReader(source, options);
}
