// The images the suites serve, and the references they are compared with: GNU tar's
// extraction of a layer as overlayfs reads a lower layer, and GNU tar applying layers in order.

import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { layerCompression } from '@gcfs/core';
import { type BuiltLayer, EVERY_ENTRY_KIND, type ImageSpec } from '@gcfs/image-builder';

const run = promisify(execFile);

const ETC = { type: 'dir', path: 'etc', mode: 0o750, uid: 0, gid: 42, xattrs: { 'user.dir': 'x' } } as const;
const BIN = { type: 'dir', path: 'bin', mode: 0o755, mtime: 1_500_000_000 } as const;

/** Three layers: every entry kind, then whiteouts, an opaque dir and replacements over it. */
export const LAYERED: ImageSpec = {
  layers: [
    { compression: 'gzip', entries: EVERY_ENTRY_KIND },
    {
      compression: 'gzip',
      entries: [
        ETC,
        { type: 'whiteout', path: 'etc/binary' },
        { type: 'file', path: 'etc/added', content: 'new in layer 1\n' },
        { type: 'dir', path: 'opt' },
        { type: 'opaque', path: 'opt' },
        { type: 'file', path: 'opt/only', content: 'after the opaque marker\n' },
        BIN,
        { type: 'file', path: 'bin/sgid', mode: 0o755, content: 'replaced\n' },
        { type: 'file', path: 'big', content: { size: 300_000, seed: 'layer1-big' } },
      ],
    },
    {
      compression: 'zstd',
      entries: [
        { type: 'whiteout', path: 'dev' },
        ETC,
        { type: 'file', path: 'etc/seeded', content: { size: 70_000, seed: 'layer2' } },
        { type: 'dir', path: 'var', mode: 0o755 },
        { type: 'whiteout', path: 'var/cache' },
      ],
    },
  ],
};

export function compressionOf(layer: BuiltLayer): 'gzip' | 'zstd' | 'none' {
  return layerCompression(layer.descriptor.mediaType) ?? 'none';
}

const TAR_COMPRESSION = { gzip: ['--gzip'], zstd: ['--zstd'], none: [] };
const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

/** Apply layers with GNU tar the OCI way: whiteouts delete below, opaque markers empty the dir, then extract. */
export async function applyLayers(
  dest: string,
  blobs: ReadonlyArray<{ path: string; compression: 'gzip' | 'zstd' | 'none' }>,
) {
  for (const blob of blobs) {
    const flags = TAR_COMPRESSION[blob.compression];
    const { stdout } = await run('tar', [...flags, '-tf', blob.path], { maxBuffer: 64 * 1024 * 1024 });
    for (const raw of stdout.split('\n')) {
      const path = raw.replace(/^\.?\//, '').replace(/\/$/, '');
      if (path === '') continue;
      const name = basename(path);
      const parent = join(dest, dirname(path));
      if (name === OPAQUE) {
        for (const child of await readdir(parent).catch(() => []))
          await rm(join(parent, child), { recursive: true });
      } else if (name.startsWith(WHITEOUT)) {
        await rm(join(parent, name.slice(WHITEOUT.length)), { recursive: true, force: true });
      }
    }
    await run('tar', [
      ...flags,
      '--xattrs',
      '--xattrs-include=*',
      '--numeric-owner',
      '--same-owner',
      '--exclude=.wh.*',
      '-xpf',
      blob.path,
      '-C',
      dest,
    ]);
  }
}
