// The one way a download request is built: a layer of an image, into the layer cache dir
// laid out as @gcfs/core's node-names.ts says (`<cacheDir>/sha256=<hex>`, and
// `<cacheDir>/untar_sha256:<hex>` while it is unpacked). gcfsd sends it; the service's
// LayerCache accepts only these dirs for the digest.

import { join } from 'node:path';
import { layerDirName, untarDirName } from '@gcfs/core';
import type { DownloadRequest, PullSecret } from './types.js';

/**
 * The request for `layer` of `image` into `cacheDir`. Nothing is checked here (the service
 * checks the digest and the dirs), so tests can build requests wrong in one field.
 */
export function downloadRequestFor(
  cacheDir: string,
  image: string,
  layer: { digest: string; mediaType: string; size: number },
  pullSecret?: PullSecret,
): DownloadRequest {
  return {
    imageName: image,
    layerId: layer.digest,
    layerDir: join(cacheDir, layerDirName(layer.digest)),
    untarDir: join(cacheDir, untarDirName(layer.digest)),
    mediaType: layer.mediaType,
    size: layer.size,
    ...(pullSecret ? { pullSecret } : {}),
  };
}
