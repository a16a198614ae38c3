import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { LayerCompression } from '@gcfs/core';
import { buildImage, type Entry, type LongNameFormat } from '@gcfs/image-builder';
import type { TreeNode, TreeSnapshot } from '@gcfs/testkit';
import {
  type BlockEncoding,
  type BlockSink,
  blockSpans,
  decodeBlock,
  decompressLayer,
  type IndexOptions,
  indexLayer,
  type LayerIndex,
  Toc,
  type TocEntry,
  whiteoutMarkerPath,
} from '../src/index.js';

export const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Keeps every block as written, checking they arrive in order. */
export class MemorySink implements BlockSink {
  readonly blocks: Buffer[] = [];
  readonly encodings: BlockEncoding[] = [];

  async writeBlock(index: number, compressed: Buffer, meta: { encoding: BlockEncoding }): Promise<void> {
    if (index !== this.blocks.length) throw new Error(`block ${index} written out of order`);
    this.blocks.push(Buffer.from(compressed));
    this.encodings.push(meta.encoding);
  }
}

/** Bytes [offset, offset+length) of the content stream, from verified blocks. */
export async function readContent(
  index: LayerIndex,
  sink: MemorySink,
  offset: number,
  length: number,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const span of blockSpans(index.blockSize, offset, length)) {
    const block = await decodeBlock(span.index, sink.blocks[span.index]!, index.blocks[span.index]!);
    parts.push(block.subarray(span.offset, span.offset + span.length));
  }
  return Buffer.concat(parts);
}

/** Build a one-layer image and return its blob path. */
export async function buildLayerBlob(
  dir: string,
  entries: readonly Entry[],
  compression: LayerCompression,
  longNames: LongNameFormat = 'pax',
): Promise<string> {
  const built = await buildImage(
    { layers: [{ compression, longNames, entries }] },
    { layoutDir: join(dir, 'layout') },
  );
  return join(built.layoutDir, 'blobs/sha256', built.layers[0]!.descriptor.digest.slice('sha256:'.length));
}

export async function indexFile(
  path: string,
  compression: LayerCompression,
  options: IndexOptions = {},
): Promise<{ index: LayerIndex; sink: MemorySink }> {
  const sink = new MemorySink();
  const index = await indexLayer(decompressLayer(createReadStream(path), compression), sink, options);
  return { index, sink };
}

/**
 * What GNU tar's extraction of the layer should look like, according to the index: files
 * rebuilt from blocks, whiteouts as their `.wh.` marker files. Opaque markers are left out
 * (their own metadata is not indexed): compare them with opaqueDirs().
 */
export async function treeOfIndex(index: LayerIndex, sink: MemorySink): Promise<TreeSnapshot> {
  const toc = new Toc(index.entries);
  const tree: TreeSnapshot = new Map();
  const groups = new Map<string, string[]>();
  for (const entry of index.entries) {
    if (entry.name === '') continue;
    const target = toc.resolveHardlink(entry);
    const node: TreeNode = {
      type: 'file',
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtimeSec: entry.mtimeSec,
      size: 0,
      xattrs: Object.fromEntries([...entry.xattrs].map(([k, v]) => [k, v.toString('base64')])),
    };
    let path = entry.name;
    switch (target.type) {
      case 'file':
        node.size = entry.size;
        node.sha256 = sha256(await readContent(index, sink, entry.contentOffset, entry.size));
        break;
      case 'whiteout':
        path = whiteoutMarkerPath(entry.name);
        node.sha256 = sha256('');
        break;
      case 'symlink':
        node.type = 'symlink';
        node.linkTarget = target.linkName;
        break;
      case 'char':
      case 'block':
        node.type = target.type;
        node.rdevMajor = entry.devMajor;
        node.rdevMinor = entry.devMinor;
        break;
      default:
        node.type = target.type as TreeNode['type'];
    }
    if (entry.type === 'hardlink') {
      const group = groups.get(target.name) ?? [target.name];
      group.push(entry.name);
      groups.set(target.name, group);
    }
    tree.set(path, node);
  }
  for (const group of groups.values()) {
    const first = [...group].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))[0]!;
    for (const member of group) tree.get(member)!.hardlinkGroup = first;
  }
  return tree;
}

export function opaqueDirs(entries: readonly TocEntry[]): string[] {
  return entries.filter((e) => e.opaque).map((e) => e.name);
}

export const OPAQUE_PATHS = /(^|\/)\.wh\.\.wh\.\.opq$/;

/** Directories GNU tar left an opaque marker in. */
export function opaqueMarkersIn(tree: TreeSnapshot): string[] {
  return [...tree.keys()]
    .filter((p) => OPAQUE_PATHS.test(p))
    .map((p) => p.replace(/\/?\.wh\.\.wh\.\.opq$/, ''));
}
