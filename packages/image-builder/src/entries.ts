import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { seededChunks } from './seeded.js';
import { DEFAULT_MTIME, type Entry, type FileContent } from './spec.js';
import type { TarHeader, TarType } from './tar-header.js';

/** A tar member ready to write: its header and, for regular files, where its bytes come from. */
export interface TarMember {
  header: TarHeader;
  body?: () => AsyncIterable<Uint8Array>;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

function invalid(path: string, problem: string): GcfsError {
  return new GcfsError(ErrorCode.InvalidArgument, `layer entry ${JSON.stringify(path)}: ${problem}`);
}

/** `./a//b/` → `a/b`; rejects empty paths and `..` so a layer cannot escape its root. */
export function normalisePath(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) throw invalid(path, 'empty path');
  if (parts.includes('..')) throw invalid(path, '".." is not allowed');
  return parts.join('/');
}

function whiteoutPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${path.slice(slash + 1)}`;
}

const DEFAULT_MODE: Record<TarType, number> = {
  file: 0o644,
  hardlink: 0o644,
  symlink: 0o777,
  char: 0o644,
  block: 0o644,
  dir: 0o755,
  fifo: 0o644,
};

async function fileBody(
  content: FileContent | undefined,
): Promise<{ size: number; body: TarMember['body'] }> {
  if (content === undefined) return { size: 0, body: undefined };
  if (typeof content === 'string' || content instanceof Uint8Array) {
    const bytes = Buffer.from(content);
    return {
      size: bytes.length,
      body: async function* () {
        yield bytes;
      },
    };
  }
  if ('seed' in content) {
    if (!Number.isSafeInteger(content.size) || content.size < 0) {
      throw new GcfsError(ErrorCode.InvalidArgument, `seeded content size ${content.size} is not valid`);
    }
    return { size: content.size, body: () => seededChunks(content) };
  }
  const { size } = await stat(content.path);
  return { size, body: () => createReadStream(content.path) };
}

/** Turn declarative entries into tar members, checking hardlink targets come first. */
export async function* membersOf(entries: readonly Entry[]): AsyncGenerator<TarMember> {
  const written = new Set<string>();
  for (const entry of entries) {
    const path = normalisePath(entry.path);
    let name = path;
    let type: TarType;
    let linkname: string | undefined;
    let size = 0;
    let body: TarMember['body'];
    let devmajor: number | undefined;
    let devminor: number | undefined;
    switch (entry.type) {
      case 'file':
        type = 'file';
        ({ size, body } = await fileBody(entry.content));
        break;
      case 'dir':
      case 'fifo':
        type = entry.type;
        break;
      case 'symlink':
        type = 'symlink';
        linkname = entry.target;
        break;
      case 'hardlink':
        type = 'hardlink';
        linkname = normalisePath(entry.target);
        if (!written.has(linkname)) throw invalid(path, `hardlink target ${linkname} was not written before`);
        break;
      case 'char':
      case 'block':
        type = entry.type;
        devmajor = entry.major;
        devminor = entry.minor;
        break;
      case 'whiteout':
        type = 'file';
        name = whiteoutPath(path);
        break;
      case 'opaque':
        type = 'file';
        name = `${path}/${OPAQUE_MARKER}`;
        break;
    }
    const xattrs = Object.entries(entry.xattrs ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => [key, Buffer.from(value)] as const);
    const header: TarHeader = {
      name,
      type,
      mode: entry.mode ?? DEFAULT_MODE[type],
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: entry.mtime ?? DEFAULT_MTIME,
      size,
      xattrs,
    };
    if (entry.uname !== undefined) header.uname = entry.uname;
    if (entry.gname !== undefined) header.gname = entry.gname;
    if (linkname !== undefined) header.linkname = linkname;
    if (devmajor !== undefined) header.devmajor = devmajor;
    if (devminor !== undefined) header.devminor = devminor;
    written.add(name);
    yield body ? { header, body } : { header };
  }
}
