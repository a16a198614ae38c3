// cfsd sessions by image, seen by the FUSE side as one source per layer. A layer shared by
// several images is read with the session of any of them that is open, so that it keeps
// working when one of those images goes away, and a layer restored from the DB before
// cfsd answered fails its reads (EIO) instead of hanging until an AuthImage succeeds.

import type { DecodedBlock, ImageSession, LayerIndex } from '@gcfs/cfsd-client';
import { ErrorCode, GcfsError } from '@gcfs/core';

/** The calls gcfsd makes with an image session (ImageSession has them). */
export type SessionLike = Pick<
  ImageSession,
  | 'layerIndex'
  | 'readBlocks'
  | 'prefetchReport'
  | 'reportReads'
  | 'close'
  | 'manifestDigest'
  | 'layers'
  | 'indexedLayers'
  | 'streamable'
  | 'notStreamableReason'
  | 'refresh'
>;

export class SessionPool {
  readonly #sessions = new Map<string, SessionLike>();
  readonly #layersOf = new Map<string, readonly string[]>();

  /** Use `session` for image `name` (closing the one it replaces); `layers` are the image's layers. */
  set(name: string, session: SessionLike, layers: readonly string[]): void {
    const previous = this.#sessions.get(name);
    if (previous !== session) previous?.close();
    this.#sessions.set(name, session);
    this.#layersOf.set(name, layers);
  }

  get(name: string): SessionLike | undefined {
    return this.#sessions.get(name);
  }

  /** Close and forget the session of image `name`. */
  delete(name: string): void {
    this.#sessions.get(name)?.close();
    this.#sessions.delete(name);
    this.#layersOf.delete(name);
  }

  closeAll(): void {
    for (const name of [...this.#sessions.keys()]) this.delete(name);
  }

  /** An open session of an image that has `layer`. */
  forLayer(layer: string): SessionLike {
    for (const [name, layers] of this.#layersOf) {
      if (layers.includes(layer)) return this.#sessions.get(name)!;
    }
    throw new GcfsError(ErrorCode.BackendUnavailable, `no cfsd session serves layer ${layer} yet`, {
      hint: 'gcfsd keeps asking cfsd for the images in use; reads work once it answers',
      details: { layer },
    });
  }

  /** The layer's table of contents, once cfsd has indexed it (within the call's deadline). */
  async layerIndex(layer: string): Promise<LayerIndex> {
    return this.forLayer(layer).layerIndex(layer, { wait: true });
  }

  async readBlocks(
    layer: string,
    first: number,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<DecodedBlock[]> {
    return this.forLayer(layer).readBlocks(layer, first, count, options);
  }
}
