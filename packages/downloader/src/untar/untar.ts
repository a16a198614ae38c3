import { rm } from 'node:fs/promises';
import { ErrorCode, GcfsError, isGcfsError, quote } from '@gcfs/core';
import {
  parentPath,
  readTar,
  type TarEntry,
  type TarReaderOptions,
  TocBuilder,
  type TocEntry,
} from '@gcfs/index';
import { TreeWriter } from './tree-writer.js';

export interface UntarOptions extends TarReaderOptions {
  /** Create char and block devices (default true); when false they are refused. Whiteouts are always made. */
  allowDevices?: boolean;
  /** fsync every file as it is written and every directory at the end (default false). */
  fsync?: boolean;
  /**
   * Stops the untar between chunks with ERR_ABORTED. A read that waits for the source is not
   * interrupted: the caller also ends the source (say, destroys the download stream).
   */
  signal?: AbortSignal;
}

export interface UntarStats {
  /** Tar members read (PAX and GNU extension headers not counted). */
  entries: number;
  /** Objects in the finished tree, whiteout devices included, the root not. */
  paths: number;
  /** Regular files written (hard links not counted). */
  files: number;
  /** Content bytes written to regular files. */
  bytes: number;
  /** Bytes of the uncompressed tar. */
  tarBytes: number;
}

/** Errors of the source stream (a corrupt gzip, say) are the layer's fault unless already coded. */
async function* guarded(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } catch (err) {
    if (isGcfsError(err)) throw err;
    throw new GcfsError(ErrorCode.BadLayer, 'the layer stream failed', { cause: err });
  }
}

function aborted(signal: AbortSignal): GcfsError {
  return new GcfsError(ErrorCode.Aborted, 'untar aborted', { cause: signal.reason });
}

/** File system failures name the entry (and where it is in the tar), like the reader's errors do. */
function writeFailed(member: TarEntry, err: unknown): GcfsError {
  const problem = (err as { code?: unknown }).code ?? (err instanceof Error ? err.message : String(err));
  return new GcfsError(
    ErrorCode.LayerWrite,
    `tar entry ${quote(member.name)} at offset ${member.headerOffset}: could not be written (${problem})`,
    { cause: err, details: { entry: member.name, offset: member.headerOffset } },
  );
}

/**
 * Unpack an uncompressed layer tar into `destDir` as an overlayfs lower directory: files
 * streamed to disk, dirs, symlinks, hard links, devices and fifos, owners, modes (setuid,
 * setgid, sticky), mtimes (within a microsecond: see timeOf), xattrs; OCI whiteouts as char
 * devices 0:0 and opaque directories as `trusted.overlay.opaque=y`. `destDir` is created, or
 * must be an empty directory. Must run as root.
 *
 * Hostile or malformed tars are refused (ERR_HOSTILE_TAR, ERR_BAD_LAYER,
 * ERR_UNSUPPORTED_TAR_ENTRY) by the index's reader and table of contents, and nothing is ever
 * written outside `destDir`; file system failures are ERR_LAYER_WRITE. Every error names the
 * entry. On error `destDir` holds a partial tree: remove it (removeUntarDir).
 */
export async function untarLayer(
  tar: AsyncIterable<Uint8Array>,
  destDir: string,
  options: UntarOptions = {},
): Promise<UntarStats> {
  const { allowDevices = true, signal } = options;
  const check = () => {
    if (signal?.aborted) throw aborted(signal);
  };
  check();
  const writer = new TreeWriter(destDir, options);
  try {
    writer.prepareRoot();
  } catch (err) {
    if (isGcfsError(err)) throw err;
    throw new GcfsError(ErrorCode.LayerWrite, `${destDir} could not be created`, { cause: err });
  }
  const reader = readTar(guarded(tar), options);
  const toc = new TocBuilder();
  const stats: UntarStats = { entries: 0, paths: 0, files: 0, bytes: 0, tarBytes: 0 };
  for await (const member of reader) {
    check();
    stats.entries++;
    const entry = toc.add(member, 0);
    if (!allowDevices && (entry?.type === 'char' || entry?.type === 'block')) {
      throw new GcfsError(
        ErrorCode.UnsupportedTarEntry,
        `tar entry ${quote(member.name)} at offset ${member.headerOffset}: ${entry.type} devices are not allowed`,
        { hint: 'devices are created only with allowDevices', details: { entry: member.name } },
      );
    }
    try {
      // Markers (opaque, or whiteouts of this layer's own paths) only need their directory.
      writer.ensureDir(parentPath(entry?.name ?? member.name));
      if (entry) await write(writer, entry, member, stats, check);
    } catch (err) {
      throw isGcfsError(err) ? err : writeFailed(member, err);
    }
  }
  const entries = toc.finish();
  try {
    writer.finish(entries);
  } catch (err) {
    throw new GcfsError(ErrorCode.LayerWrite, `directories of ${destDir} could not be finished`, {
      cause: err,
    });
  }
  stats.paths = entries.length - 1;
  stats.tarBytes = reader.bytesRead;
  return stats;
}

async function write(
  writer: TreeWriter,
  entry: TocEntry,
  member: TarEntry,
  stats: UntarStats,
  check: () => void,
): Promise<void> {
  switch (entry.type) {
    case 'file':
      stats.bytes += await writer.file(entry, member.body, check);
      stats.files++;
      return;
    case 'dir':
      return writer.dir(entry);
    case 'symlink':
      return writer.symlink(entry);
    case 'hardlink':
      return writer.hardlink(entry);
    case 'char':
    case 'block':
    case 'fifo':
    case 'whiteout':
      return writer.node(entry);
  }
}

/** Remove a (partial) untar directory and everything in it; nothing there is fine. */
export async function removeUntarDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
