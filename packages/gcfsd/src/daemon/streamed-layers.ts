// The snapshotter's streaming side: a remote snapshot's layer is layer <i> of an image the
// registrar serves under images/<name>/<i>. Images are registered by digest (repository
// @ manifest digest), never by tag: a tag moved by a later push must not change the layers
// under snapshots that already exist.

import { join } from 'node:path';
import { ErrorCode, GcfsError, imageDirName, parseDigest, SingleFlight, sleep } from '@gcfs/core';
import { ImageReference, parseReference } from '@gcfs/registry';
import { layerUnavailable, type RemoteLayerRef, type RemoteLayers } from '@gcfs/snapshotter';
import type { Registrar } from './registrar.js';
import type { RegisteredImage } from './served-images.js';

/** The name a remote layer's image is registered under: `<registry>/<repository>@<manifest digest>`. */
export function streamedImageName(layer: Pick<RemoteLayerRef, 'imageRef' | 'manifestDigest'>): string {
  const ref = parseReference(layer.imageRef);
  return new ImageReference(
    ref.registry,
    ref.repository,
    undefined,
    parseDigest(layer.manifestDigest),
  ).toString();
}

export interface StreamedLayersOptions {
  registrar: Pick<Registrar, 'register' | 'streaming' | 'layerServable' | 'unregister'>;
  /** gcfsd's --mount_point. */
  mountPoint: string;
  /** How long a mount waits for a layer to become servable (default 10 s). */
  availabilityWaitMs?: number;
  /** A new image is streamed (registered for a snapshot). */
  onRegistered?: (image: RegisteredImage, layer: RemoteLayerRef) => void;
}

export class StreamedLayers implements RemoteLayers {
  readonly #o: StreamedLayersOptions;
  /** Registrations under way, so that concurrent pulls of an image register it once. */
  readonly #registering = new SingleFlight<string, RegisteredImage>();

  constructor(options: StreamedLayersOptions) {
    this.#o = options;
  }

  async prepare(layer: RemoteLayerRef): Promise<void> {
    const name = streamedImageName(layer);
    const image = this.#o.registrar.streaming(name) ?? (await this.#register(name, layer));
    const actual = image.layers[layer.index]?.digest;
    if (actual !== layer.digest) {
      throw new GcfsError(
        ErrorCode.NotStreamable,
        `layer ${layer.index} of ${name} is ${actual ?? 'missing'}, not ${layer.digest} as containerd says`,
      );
    }
  }

  async lowerDir(layer: RemoteLayerRef): Promise<string> {
    const name = streamedImageName(layer);
    // Just after a gcfsd start the restored images' indexes are still on their way from cfsd.
    const deadline = Date.now() + (this.#o.availabilityWaitMs ?? 10_000);
    while (!this.#o.registrar.layerServable(name, layer.index)) {
      if (Date.now() >= deadline) throw layerUnavailable(layer);
      await sleep(100);
    }
    return join(this.#o.mountPoint, 'images', imageDirName(name), String(layer.index));
  }

  async release(layer: RemoteLayerRef): Promise<void> {
    await this.#o.registrar.unregister(streamedImageName(layer));
  }

  #register(name: string, layer: RemoteLayerRef): Promise<RegisteredImage> {
    return this.#registering.run(name, async () => {
      const image = await this.#o.registrar.register(name);
      this.#o.onRegistered?.(image, layer);
      return image;
    });
  }
}
