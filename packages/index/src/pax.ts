import { ErrorCode, quote } from '@gcfs/core';
import { decodeText, type Place, tarError } from './tar-header.js';

/**
 * PAX extended header records, `<length> <keyword>=<value>\n`, with values kept as raw
 * bytes: xattr values are binary (tar-stream decodes them as UTF-8 and corrupts them).
 */
export function parsePaxRecords(data: Buffer, place: Place, into: Map<string, Buffer>): void {
  let at = 0;
  while (at < data.length) {
    // GNU tar pads some headers with NULs after the last record.
    if (data[at] === 0 && data.subarray(at).every((byte) => byte === 0)) return;
    const space = data.indexOf(0x20, at);
    const digits = space < 0 ? '' : data.subarray(at, space).toString('latin1');
    if (!/^[1-9][0-9]{0,15}$/.test(digits)) {
      throw tarError(ErrorCode.BadLayer, place, `PAX record at byte ${at} has no valid length`);
    }
    const end = at + Number(digits);
    const equals = data.indexOf(0x3d, space);
    if (end > data.length || data[end - 1] !== 0x0a || equals < 0 || equals >= end) {
      throw tarError(ErrorCode.BadLayer, place, `PAX record at byte ${at} is malformed`);
    }
    const keyword = decodeText(data.subarray(space + 1, equals), place, 'PAX keyword');
    into.set(keyword, data.subarray(equals + 1, end - 1));
    at = end;
  }
}

/** A decimal PAX number (size, uid, gid). */
export function paxInteger(value: Buffer, keyword: string, place: Place): number {
  const text = value.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw tarError(ErrorCode.BadLayer, place, `PAX ${keyword} ${quote(text)} is not a valid number`);
  }
  return Number(text);
}

/** A PAX time, `-?seconds[.fraction]`, as whole seconds and nanoseconds (0..999999999). */
export function paxTime(value: Buffer, keyword: string, place: Place): { sec: number; nsec: number } {
  const text = value.toString('latin1');
  const match = /^(-?)([0-9]{1,16})(?:\.([0-9]*))?$/.exec(text);
  if (!match || !Number.isSafeInteger(Number(match[2]))) {
    throw tarError(ErrorCode.BadLayer, place, `PAX ${keyword} ${quote(text)} is not a valid time`);
  }
  const whole = Number(match[2]);
  const nsec = Number((match[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (match[1] !== '-') return { sec: whole, nsec };
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - nsec };
}

const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

/**
 * Extended attributes from PAX records: GNU/star `SCHILY.xattr.<name>` (raw value; GNU tar
 * escapes `%` and `=` in the name) and libarchive's `LIBARCHIVE.xattr.<url-encoded name>`
 * (base64 value). When both name the same attribute, the raw SCHILY value wins.
 */
export function paxXattrs(records: Map<string, Buffer>, place: Place): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  for (const [keyword, value] of records) {
    if (!keyword.startsWith(LIBARCHIVE_XATTR)) continue;
    const name = urlDecode(keyword.slice(LIBARCHIVE_XATTR.length), place);
    xattrs.set(checkXattrName(name, place), Buffer.from(value.toString('latin1'), 'base64'));
  }
  for (const [keyword, value] of records) {
    if (!keyword.startsWith(SCHILY_XATTR)) continue;
    const name = keyword.slice(SCHILY_XATTR.length).replaceAll('%3D', '=').replaceAll('%25', '%');
    xattrs.set(checkXattrName(name, place), value);
  }
  return xattrs;
}

function urlDecode(text: string, place: Place): string {
  try {
    return decodeURIComponent(text);
  } catch (err) {
    throw tarError(ErrorCode.BadLayer, place, `xattr name ${quote(text)} is badly encoded`, err);
  }
}

function checkXattrName(name: string, place: Place): string {
  if (name === '' || name.includes('\0')) {
    throw tarError(ErrorCode.HostileTar, place, `invalid xattr name ${quote(name)}`);
  }
  return name;
}
