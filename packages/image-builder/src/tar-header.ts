import { ErrorCode, GcfsError } from '@gcfs/core';
import type { LongNameFormat } from './spec.js';

// We encode headers ourselves rather than through tar-stream 3: its pack() turns PAX values
// into UTF-8 strings (binary xattrs such as security.capability come out corrupted), writes
// mode 0 as 0644 and has no GNU long names.

export const BLOCK = 512;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

const TYPEFLAG: Record<TarType | 'pax' | 'gnuLongName' | 'gnuLongLink', string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  pax: 'x',
  gnuLongName: 'L',
  gnuLongLink: 'K',
};

/** One tar member's metadata, already normalised. */
export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  mtime: number;
  size: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes in write order; values are raw bytes. */
  xattrs: ReadonlyArray<readonly [string, Uint8Array]>;
}

/** Zero bytes that round `size` up to a whole number of blocks. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

function fits(value: number, field: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value < 8 ** (field - 1);
}

function writeOctal(block: Buffer, offset: number, field: number, value: number): void {
  block.write(value.toString(8).padStart(field - 1, '0'), offset, field - 1, 'ascii');
}

/** Raw bytes, cut at the field's end: long values travel in PAX or GNU entries instead. */
function writeBytes(block: Buffer, offset: number, field: number, text: string): void {
  Buffer.from(text).copy(block, offset, 0, field);
}

interface RawHeader {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

/** One 512-byte header block; every numeric field must already fit. */
function headerBlock(h: RawHeader, gnu: boolean): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeBytes(block, 0, 100, h.name);
  writeOctal(block, 100, 8, h.mode);
  writeOctal(block, 108, 8, h.uid);
  writeOctal(block, 116, 8, h.gid);
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, h.mtime);
  block.write(h.typeflag, 156, 1, 'ascii');
  writeBytes(block, 157, 100, h.linkname ?? '');
  // GNU magic is what GNU tar writes alongside ././@LongLink; POSIX ustar otherwise.
  block.write(gnu ? 'ustar  \0' : 'ustar\x0000', 257, 8, 'latin1');
  writeBytes(block, 265, 32, h.uname ?? '');
  writeBytes(block, 297, 32, h.gname ?? '');
  writeOctal(block, 329, 8, h.devmajor ?? 0);
  writeOctal(block, 337, 8, h.devminor ?? 0);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

/** A `<length> <key>=<value>\n` record, length counting itself, in bytes. */
function paxRecord(key: string, value: Uint8Array | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

// GNU tar's encoding of xattr names inside SCHILY.xattr keywords.
function xattrKeyword(name: string): string {
  return `SCHILY.xattr.${name.replaceAll('%', '%25').replaceAll('=', '%3D')}`;
}

function extensionEntry(name: string, typeflag: string, data: Buffer, h: TarHeader, gnu: boolean): Buffer {
  const header = headerBlock(
    { name, typeflag, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: fitOr(h.mtime, 12, 0) },
    gnu,
  );
  return Buffer.concat([header, data, padding(data.length)]);
}

function fitOr(value: number, field: number, fallback: number): number {
  return fits(value, field) ? value : fallback;
}

/**
 * The blocks that introduce one member: GNU long-name entries and/or a PAX extended header
 * when something does not fit ustar, then the ustar header itself. Content follows.
 */
export function encodeHeader(h: TarHeader, longNames: LongNameFormat = 'pax'): Buffer {
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  const gnu = longNames === 'gnu';
  const blocks: Buffer[] = [];
  const pax: Buffer[] = [];
  const longName = Buffer.byteLength(name) > 100;
  const longLink = Buffer.byteLength(linkname) > 100;
  if (gnu) {
    if (longName) blocks.push(extensionEntry('././@LongLink', TYPEFLAG.gnuLongName, cString(name), h, gnu));
    if (longLink)
      blocks.push(extensionEntry('././@LongLink', TYPEFLAG.gnuLongLink, cString(linkname), h, gnu));
  } else {
    if (longName) pax.push(paxRecord('path', name));
    if (longLink) pax.push(paxRecord('linkpath', linkname));
  }
  for (const [key, value, field] of [
    ['uid', h.uid, 8],
    ['gid', h.gid, 8],
    ['size', h.size, 12],
    ['mtime', h.mtime, 12],
  ] as const) {
    if (!fits(value, field)) {
      if (!Number.isSafeInteger(value)) throw invalid(h, `${key} ${value} is not an integer`);
      pax.push(paxRecord(key, String(value)));
    }
  }
  for (const [key, value] of [
    ['uname', h.uname],
    ['gname', h.gname],
  ] as const) {
    if (value !== undefined && Buffer.byteLength(value) > 32) pax.push(paxRecord(key, value));
  }
  for (const [xattr, value] of h.xattrs) pax.push(paxRecord(xattrKeyword(xattr), value));
  for (const [key, value] of [
    ['devmajor', h.devmajor ?? 0],
    ['devminor', h.devminor ?? 0],
  ] as const) {
    if (!fits(value, 8)) throw invalid(h, `${key} ${value} does not fit a tar header`);
  }
  if (pax.length > 0) {
    blocks.push(extensionEntry(`PaxHeaders/${basename(name)}`, TYPEFLAG.pax, Buffer.concat(pax), h, gnu));
  }
  blocks.push(
    headerBlock(
      {
        name,
        typeflag: TYPEFLAG[h.type],
        mode: h.mode & 0o7777,
        uid: fitOr(h.uid, 8, 0),
        gid: fitOr(h.gid, 8, 0),
        size: fitOr(h.size, 12, 0),
        mtime: fitOr(h.mtime, 12, 0),
        linkname,
        uname: h.uname,
        gname: h.gname,
        devmajor: h.devmajor ?? 0,
        devminor: h.devminor ?? 0,
      },
      gnu,
    ),
  );
  return Buffer.concat(blocks);
}

function cString(text: string): Buffer {
  return Buffer.concat([Buffer.from(text), Buffer.alloc(1)]);
}

function basename(path: string): string {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

function invalid(h: TarHeader, problem: string): GcfsError {
  return new GcfsError(ErrorCode.InvalidArgument, `tar entry ${JSON.stringify(h.name)}: ${problem}`);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
