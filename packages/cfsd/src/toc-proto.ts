import type { TocEntry } from '@gcfs/index';
import { containerfs as pb } from '@gcfs/proto';

const ENTRY_TYPES: Record<TocEntry['type'], pb.EntryType> = {
  file: pb.EntryType.ENTRY_TYPE_FILE,
  dir: pb.EntryType.ENTRY_TYPE_DIR,
  symlink: pb.EntryType.ENTRY_TYPE_SYMLINK,
  hardlink: pb.EntryType.ENTRY_TYPE_HARDLINK,
  char: pb.EntryType.ENTRY_TYPE_CHAR,
  block: pb.EntryType.ENTRY_TYPE_BLOCK,
  fifo: pb.EntryType.ENTRY_TYPE_FIFO,
  whiteout: pb.EntryType.ENTRY_TYPE_WHITEOUT,
};

/** A TOC entry as it travels on the wire. */
export function tocEntryToProto(entry: TocEntry): pb.TocEntry {
  return {
    name: entry.name,
    type: ENTRY_TYPES[entry.type],
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    uname: entry.uname,
    gname: entry.gname,
    size: entry.size,
    mtimeSec: entry.mtimeSec,
    mtimeNsec: entry.mtimeNsec,
    linkName: entry.linkName,
    devMajor: entry.devMajor,
    devMinor: entry.devMinor,
    xattrs: Object.fromEntries(entry.xattrs),
    opaque: entry.opaque,
    contentOffset: entry.contentOffset,
  };
}
