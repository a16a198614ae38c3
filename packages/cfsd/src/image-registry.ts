import type { Descriptor, Digest } from '@gcfs/core';
import { LRUCache } from 'lru-cache';

/** An image some caller was allowed to pull: its layers bound what its sessions may read. */
export interface KnownImage {
  reference: string;
  manifestDigest: Digest;
  layers: Descriptor[];
}

/**
 * The images AuthImage has admitted, by manifest digest. Session tokens name a manifest
 * digest; a content call may read a layer only when it belongs to that image, so a token
 * for image A never reads image B's layers. Bounded: an evicted image's sessions get
 * UNAUTHENTICATED and re-authenticate.
 */
export class ImageRegistry {
  private readonly images: LRUCache<Digest, KnownImage>;

  constructor(maxImages = 10_000) {
    this.images = new LRUCache({ max: maxImages });
  }

  admit(image: KnownImage): void {
    this.images.set(image.manifestDigest, image);
  }

  get(manifestDigest: Digest): KnownImage | undefined {
    return this.images.get(manifestDigest);
  }

  /** The layer's descriptor if it belongs to the image. */
  layerOf(image: KnownImage, layerDigest: string): Descriptor | undefined {
    return image.layers.find((layer) => layer.digest === layerDigest);
  }
}
