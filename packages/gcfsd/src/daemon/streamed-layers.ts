// The snapshotter's streaming side: a remote snapshot's layer is layer <i> of an image the
// registrar serves under images/<name>/<i>. Images are registered by digest (repository
// @ manifest digest), never by tag: a tag moved by a later push must not change the layers
// under snapshots that already exist.

import { join } from 'node:path';
import { ErrorCode, GcfsError, imageDirName, parseDigest, SingleFlight, sleep } from '@gcfs/core';
import { ImageReference, parseReference } from '@gcfs/registry';
import { layerUnavailable, type RemoteLayerRef, type RemoteLayers } from '@gcfs/snapshotter';
import { PENDING_WAIT_MS } from './layer-state.js';
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
  registrar: Pick<
    Registrar,
    'register' | 'streaming' | 'layerAvailability' | 'layerIndexFailure' | 'unregister'
  >;
  /** gcfsd's --mount_point. */
  mountPoint: string;
  /** Images smaller than this (compressed) are pulled normally (--min_streamed_image_size_mb). */
  minImageBytes?: number;
  /**
   * How long a mount waits for a layer nothing is known to bring (default 10 s): the index of
   * a restored image whose cfsd has not answered yet.
   */
  availabilityWaitMs?: number;
  /**
   * How long a mount waits for a layer that cfsd is indexing or that is downloading (default
   * 10 min): a first pull's worst case is a full pull.
   */
  pendingWaitMs?: number;
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

  /**
   * Register the layer's image (once) and wait until the layer can be read: from cfsd's index
   * or its local copy, whichever comes first on a first pull. The unpack waits rather than the
   * container's start, so that a layer cfsd cannot index is still pulled normally (throws
   * ERR_NOT_STREAMABLE: containerd pulls it).
   */
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
    await this.#untilServable(name, layer, () => {
      const failure = this.#o.registrar.layerIndexFailure(name, layer.index);
      if (failure !== undefined) throw new GcfsError(ErrorCode.NotStreamable, failure);
    });
  }

  async lowerDir(layer: RemoteLayerRef): Promise<string> {
    const name = streamedImageName(layer);
    await this.#untilServable(name, layer);
    return join(this.#o.mountPoint, 'images', imageDirName(name), String(layer.index));
  }

  /** Wait while the layer is on its way (`check` may end the wait by throwing). */
  async #untilServable(name: string, layer: RemoteLayerRef, check?: () => void): Promise<void> {
    const started = Date.now();
    for (;;) {
      const availability = this.#o.registrar.layerAvailability(name, layer.index);
      if (availability === 'servable') return;
      check?.();
      if (typeof availability === 'object') {
        throw layerUnavailable(layer, new GcfsError(ErrorCode.LayerUnavailable, availability.failed));
      }
      // cfsd indexing it or its download under way: at worst as long as a full pull. Nothing
      // known under way: the index of an image restored at start, on its way from cfsd.
      const patience =
        availability === 'pending'
          ? (this.#o.pendingWaitMs ?? PENDING_WAIT_MS)
          : (this.#o.availabilityWaitMs ?? 10_000);
      if (Date.now() - started >= patience) throw layerUnavailable(layer);
      await sleep(50);
    }
  }

  async release(layer: RemoteLayerRef): Promise<void> {
    await this.#o.registrar.unregister(streamedImageName(layer));
  }

  #register(name: string, layer: RemoteLayerRef): Promise<RegisteredImage> {
    return this.#registering.run(name, async () => {
      const image = await this.#o.registrar.register(name, { minImageBytes: this.#o.minImageBytes });
      this.#o.onRegistered?.(image, layer);
      return image;
    });
  }
}
