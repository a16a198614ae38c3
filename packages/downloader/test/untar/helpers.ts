import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type LayerCompression, OPAQUE_VALUE, OPAQUE_XATTR } from '@gcfs/core';
import { buildImage, type Entry, type LongNameFormat } from '@gcfs/image-builder';
import { decompressLayer } from '@gcfs/index';
import type { TreeNode, TreeSnapshot } from '@gcfs/testkit';
import { type UntarOptions, type UntarStats, untarLayer } from '../../src/untar/index.js';

export const run = promisify(execFile);

/** Build an image of these layers and return the paths of their blobs, bottom layer first. */
export async function buildLayerBlobs(
  dir: string,
  layers: ReadonlyArray<readonly Entry[]>,
  compression: LayerCompression,
  longNames: LongNameFormat = 'pax',
): Promise<string[]> {
  const built = await buildImage(
    { layers: layers.map((entries) => ({ compression, longNames, entries })) },
    { layoutDir: join(dir, 'layout') },
  );
  return built.layers.map((layer) =>
    join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice('sha256:'.length)),
  );
}

/** What the downloader does with a blob, minus the download: decompress and untar. */
export function untarBlob(
  blob: string,
  compression: LayerCompression,
  destDir: string,
  options?: UntarOptions,
): Promise<UntarStats> {
  return untarLayer(decompressLayer(createReadStream(blob), compression), destDir, options);
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

function split(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return [slash < 0 ? '' : path.slice(0, slash), path.slice(slash + 1)];
}

/**
 * GNU tar's extraction of one layer as overlay wants it, converted on the snapshot as
 * containerd's overlay converter does on disk: `.wh..wh..opq` becomes the directory's
 * `trusted.overlay.opaque=y`, `.wh.<name>` a char device 0:0 with mode 0 and the marker's
 * owner and mtime, unless the layer has `<name>` itself: then it only concerns lower layers
 * (and a directory `<name>` becomes opaque).
 */
export function overlayView(extracted: TreeSnapshot): TreeSnapshot {
  const view: TreeSnapshot = new Map();
  for (const [path, node] of extracted) {
    const [dir, name] = split(path);
    const joined = (base: string) => (dir === '' ? base : `${dir}/${base}`);
    if (name === OPAQUE) continue;
    if (name.startsWith(WHITEOUT)) {
      const target = joined(name.slice(WHITEOUT.length));
      if (extracted.has(target)) continue;
      const whiteout: TreeNode = {
        type: 'char',
        mode: 0,
        uid: node.uid,
        gid: node.gid,
        mtimeSec: node.mtimeSec,
        size: 0,
        rdevMajor: 0,
        rdevMinor: 0,
        xattrs: {},
      };
      view.set(target, whiteout);
      continue;
    }
    const copy = { ...node, xattrs: { ...node.xattrs } };
    // A whiteout next to a directory of this layer: the lower directory is replaced.
    const markers = [`${path}/${OPAQUE}`, joined(`${WHITEOUT}${name}`)];
    if (node.type === 'dir' && markers.some((marker) => extracted.has(marker))) {
      copy.xattrs[OPAQUE_XATTR] = Buffer.from(OPAQUE_VALUE).toString('base64');
    }
    view.set(path, copy);
  }
  return new Map([...view].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
