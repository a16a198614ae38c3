import { ErrorCode, GcfsError, quote } from '@gcfs/core';

// Header layout of ustar (POSIX.1-1988), GNU and v7 tar: offsets and widths in bytes.
export const BLOCK = 512;
const NAME = [0, 100] as const;
const MODE = [100, 8] as const;
const UID = [108, 8] as const;
const GID = [116, 8] as const;
const SIZE = [124, 12] as const;
const MTIME = [136, 12] as const;
const CHECKSUM = [148, 8] as const;
const TYPEFLAG = 156;
const LINKNAME = [157, 100] as const;
const MAGIC = 257;
const UNAME = [265, 32] as const;
const GNAME = [297, 32] as const;
const DEVMAJOR = [329, 8] as const;
const DEVMINOR = [337, 8] as const;
const PREFIX = [345, 155] as const;

export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

/** One header block as written, before PAX records or GNU long names are applied. */
export interface RawHeader {
  /** ustar prefix and name joined; not normalised. */
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkName: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
  format: HeaderFormat;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Where a problem was found, for messages that name the entry. */
export interface Place {
  name: string;
  offset: number;
}

export function tarError(code: ErrorCode, place: Place, problem: string, cause?: unknown): GcfsError {
  return new GcfsError(code, `tar entry ${quote(place.name)} at offset ${place.offset}: ${problem}`, {
    cause,
    details: { entry: place.name, offset: place.offset },
  });
}

/** Bytes as UTF-8; names that are not UTF-8 are refused rather than served under a wrong name. */
export function decodeText(bytes: Uint8Array, place: Place, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw tarError(ErrorCode.UnsupportedTarEntry, place, `${what} is not valid UTF-8`, err);
  }
}

function field(block: Buffer, [offset, width]: readonly [number, number]): Buffer {
  const bytes = block.subarray(offset, offset + width);
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

/**
 * A numeric field: octal digits (leading spaces, then NUL or space terminated, blank = 0)
 * or GNU base-256 (high bit of the first byte set; two's complement when negative).
 */
function numeric(
  block: Buffer,
  [offset, width]: readonly [number, number],
  what: string,
  place: Place,
  allowNegative = false,
): number {
  const end = offset + width;
  const first = block[offset]!;
  if (first & 0x80) {
    let value = BigInt(first & 0x7f);
    for (let i = offset + 1; i < end; i++) value = (value << 8n) | BigInt(block[i]!);
    if (first & 0x40) value -= 1n << BigInt(8 * width - 1);
    if (value < 0n && !allowNegative) throw tarError(ErrorCode.BadLayer, place, `negative ${what} ${value}`);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw tarError(ErrorCode.BadLayer, place, `${what} ${value} is absurdly large`);
    }
    return Number(value);
  }
  let i = offset;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  for (; i < end && block[i]! >= 0x30 && block[i]! <= 0x37; i++) value = value * 8 + (block[i]! - 0x30);
  while (i < end && (block[i] === 0 || block[i] === 0x20)) i++;
  if (i !== end) {
    const text = JSON.stringify(block.subarray(offset, end).toString('latin1'));
    throw tarError(ErrorCode.BadLayer, place, `${what} field ${text} does not parse`);
  }
  if (!Number.isSafeInteger(value)) throw tarError(ErrorCode.BadLayer, place, `${what} is absurdly large`);
  return value;
}

export function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

function checksumOk(block: Buffer, place: Place): boolean {
  const stored = numeric(block, CHECKSUM, 'checksum', place);
  // Sum with the checksum field as spaces; some old tars summed signed bytes (GNU accepts both).
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= CHECKSUM[0] && i < CHECKSUM[0] + CHECKSUM[1] ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte < 0x80 ? byte : byte - 0x100;
  }
  return stored === unsigned || stored === signed;
}

function formatOf(block: Buffer): HeaderFormat {
  const magic = block.subarray(MAGIC, MAGIC + 8).toString('latin1');
  if (magic === 'ustar  \0') return 'gnu';
  if (magic.startsWith('ustar\0')) return 'ustar';
  return 'v7';
}

/** Decode and verify one non-zero header block. */
export function decodeHeader(block: Buffer, offset: number): RawHeader {
  // The name as far as it can be read, so that even a broken header is named in errors.
  const place: Place = { name: field(block, NAME).toString('latin1'), offset };
  if (!checksumOk(block, place)) throw tarError(ErrorCode.BadLayer, place, 'header checksum mismatch');
  const format = formatOf(block);
  let name = decodeText(field(block, NAME), place, 'name');
  const prefix = format === 'ustar' ? decodeText(field(block, PREFIX), place, 'name prefix') : '';
  if (prefix !== '') name = `${prefix}/${name}`;
  place.name = name;
  const extended = format !== 'v7';
  return {
    name,
    typeflag: String.fromCharCode(block[TYPEFLAG]!),
    mode: numeric(block, MODE, 'mode', place) & 0o7777,
    uid: numeric(block, UID, 'uid', place),
    gid: numeric(block, GID, 'gid', place),
    size: numeric(block, SIZE, 'size', place),
    mtime: numeric(block, MTIME, 'mtime', place, true),
    linkName: decodeText(field(block, LINKNAME), place, 'link name'),
    uname: extended ? decodeText(field(block, UNAME), place, 'uname') : '',
    gname: extended ? decodeText(field(block, GNAME), place, 'gname') : '',
    devMajor: extended ? numeric(block, DEVMAJOR, 'devmajor', place) : 0,
    devMinor: extended ? numeric(block, DEVMINOR, 'devminor', place) : 0,
    format,
  };
}
