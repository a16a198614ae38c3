// How big an image is, read by gcfsd itself from the image's manifest in its registry. Images
// too small to gain from streaming (the pause image, busybox) are told apart before cfsd is
// asked: their pull waits for no AuthImage round trip, and a cold cfsd indexes nothing for them.
import { clientForImage, type RegistryAccessOptions } from '@gcfs/registry';
import type { PullCredential } from './layer-downloads.js';

/** Compressed bytes of the image's layers (for this node's platform). */
export type ImageSizer = (image: string, credential: PullCredential) => Promise<number>;

export function registryImageSizer(access: RegistryAccessOptions): ImageSizer {
  return async (image, credential) => {
    const client = clientForImage(image, credential, access);
    try {
      const { manifest } = await client.resolve(image, { withConfig: false });
      return manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
    } finally {
      await client.close();
    }
  };
}
