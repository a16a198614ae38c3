import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip, createZstdCompress } from 'node:zlib';
import { type Descriptor, type Digest, Digester, type LayerCompression, MediaType } from '@gcfs/core';
import { membersOf } from './entries.js';
import { directoryEntries } from './from-directory.js';
import type { OciLayout } from './layout.js';
import type { LayerSpec } from './spec.js';
import { tarBytes } from './tar-writer.js';

/** Which family of media types to write: OCI (default) or Docker schema 2. */
export type ManifestFormat = 'oci' | 'docker';

export interface BuiltLayer {
  /** The blob as it is pushed: compressed digest and size. */
  descriptor: Descriptor;
  /** Digest of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: Digest;
  uncompressedSize: number;
}

export interface CompressionOptions {
  /** 1-9, default 6 (gzip's own default). */
  gzipLevel?: number;
  /** 1-19, default 3 (zstd's own default). */
  zstdLevel?: number;
}

const LAYER_MEDIA_TYPE: Record<ManifestFormat, Record<LayerCompression, string>> = {
  oci: { gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd, none: MediaType.OciLayer },
  docker: {
    gzip: MediaType.DockerLayerGzip,
    // Docker has no zstd type of its own; dockerd and containerd accept the OCI one.
    zstd: MediaType.OciLayerZstd,
    none: 'application/vnd.docker.image.rootfs.diff.tar',
  },
};

export function layerMediaType(compression: LayerCompression, format: ManifestFormat): string {
  return LAYER_MEDIA_TYPE[format][compression];
}

/** A pass-through stream feeding everything it sees to a Digester. */
function digestTap(digester: Digester): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digester.update(chunk);
      callback(null, chunk);
    },
  });
}

function compressor(compression: LayerCompression, options: CompressionOptions): Transform[] {
  switch (compression) {
    case 'gzip':
      return [createGzip({ level: options.gzipLevel ?? 6 })];
    case 'zstd':
      return [
        createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: options.zstdLevel ?? 3 } }),
      ];
    case 'none':
      return [];
  }
}

async function tarSource(spec: LayerSpec): Promise<Readable> {
  if ('tarFile' in spec) return createReadStream(spec.tarFile);
  const entries = 'entries' in spec ? spec.entries : await directoryEntries(spec.fromDirectory);
  // One chunk in flight between generator and hashing: the pipeline's buffers stay small.
  return Readable.from(tarBytes(membersOf(entries), spec.longNames), { highWaterMark: 1 });
}

/**
 * Stream one layer into the layout: tar → sha256 (diffID) → compressor → sha256 (blob
 * digest) → file. Memory use is bounded by stream buffers whatever the layer's size.
 */
export async function buildLayer(
  layout: OciLayout,
  spec: LayerSpec,
  format: ManifestFormat,
  options: CompressionOptions = {},
): Promise<BuiltLayer> {
  const compression = spec.compression ?? 'gzip';
  const uncompressed = new Digester();
  const compressed = new Digester();
  const temp = layout.tempBlobPath();
  try {
    await pipeline([
      await tarSource(spec),
      digestTap(uncompressed),
      ...compressor(compression, options),
      digestTap(compressed),
      createWriteStream(temp),
    ]);
    const digest = compressed.digest();
    await layout.commitBlob(temp, digest);
    const descriptor: Descriptor = {
      mediaType: layerMediaType(compression, format),
      digest,
      size: compressed.size,
    };
    if (spec.annotations) descriptor.annotations = spec.annotations;
    return { descriptor, diffId: uncompressed.digest(), uncompressedSize: uncompressed.size };
  } finally {
    await layout.discard(temp);
  }
}
