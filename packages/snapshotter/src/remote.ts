// Remote (streamed) snapshots: containerd's remote-snapshot protocol as CRI drives it. On a
// Prepare that carries `containerd.io/snapshot.ref` and CRI's image labels, the layer is made
// servable by the streaming side and committed under the target name, and containerd is told
// ALREADY_EXISTS so it never fetches the blob. Anything that keeps a layer from streaming
// turns into a normal snapshot (containerd pulls it), reported once per image.

import { ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';

export const SNAPSHOT_REF_LABEL = 'containerd.io/snapshot.ref';
/** Set on every snapshot we committed as remote; its value is the image it streams from. */
export const REMOTE_LABEL = 'containerd.io/snapshot/gcfs.remote';

export const CRI_LABELS = {
  imageRef: 'containerd.io/snapshot/cri.image-ref',
  layerDigest: 'containerd.io/snapshot/cri.layer-digest',
  imageLayers: 'containerd.io/snapshot/cri.image-layers',
  manifestDigest: 'containerd.io/snapshot/cri.manifest-digest',
} as const;

/** Which layer of which image a remote snapshot is. */
export interface RemoteLayerRef {
  /** CRI's normalized image reference (may name a tag). */
  imageRef: string;
  /** The platform manifest the layers belong to. */
  manifestDigest: string;
  /** The layer's digest. */
  digest: string;
  /** Position of the layer in the manifest, 0 for the base. */
  index: number;
}

/** What remote snapshots need from the streaming side (gcfsd provides it). */
export interface RemoteLayers {
  /** Make the layer servable (registering its image); throws when it cannot be streamed. */
  prepare(layer: RemoteLayerRef): Promise<void>;
  /** The directory overlayfs uses as the layer's lower dir; rejects with LayerUnavailable. */
  lowerDir(layer: RemoteLayerRef): Promise<string>;
  /** No snapshot uses the image of `layer` any more. */
  release(layer: RemoteLayerRef): Promise<void>;
}

/** Why an image was not streamed: an ErrorCode, or MissingLabels. */
export type FallbackReason = ErrorCode | 'MissingLabels';

export interface FallbackEvent {
  /** The chain ID containerd asked for. */
  target: string;
  /** Unknown when the labels are missing. */
  imageRef?: string;
  manifestDigest?: string;
  reason: FallbackReason;
  message: string;
}

export const MISSING_LABELS_MESSAGE =
  'containerd passed no CRI image labels with the layer: set disable_snapshot_annotations = false ' +
  'in the CRI plugin\'s [plugins."io.containerd.grpc.v1.cri".containerd] section to stream images';

/**
 * The remote layer a Prepare asks for, from its labels and the depth of its parent chain;
 * a FallbackEvent when the CRI labels are missing or inconsistent.
 */
export function remoteLayerOf(
  target: string,
  labels: Record<string, string>,
  depth: number,
): RemoteLayerRef | FallbackEvent {
  const imageRef = labels[CRI_LABELS.imageRef];
  const digest = labels[CRI_LABELS.layerDigest];
  const manifestDigest = labels[CRI_LABELS.manifestDigest];
  if (imageRef === undefined || digest === undefined || manifestDigest === undefined) {
    return { target, imageRef, manifestDigest, reason: 'MissingLabels', message: MISSING_LABELS_MESSAGE };
  }
  const later = labels[CRI_LABELS.imageLayers]?.split(',') ?? [];
  if (later.length > 0 && later[0] !== digest) {
    return {
      target,
      imageRef,
      manifestDigest,
      reason: ErrorCode.InvalidArgument,
      message: `label ${CRI_LABELS.imageLayers} does not start with the layer ${digest}`,
    };
  }
  return { imageRef, manifestDigest, digest, index: depth };
}

export function isFallback(value: RemoteLayerRef | FallbackEvent): value is FallbackEvent {
  return 'reason' in value;
}

/** The fallback event for a failed RemoteLayers.prepare. */
export function fallbackOf(target: string, layer: RemoteLayerRef, err: unknown): FallbackEvent {
  return {
    target,
    imageRef: layer.imageRef,
    manifestDigest: layer.manifestDigest,
    reason: isGcfsError(err) ? err.code : ErrorCode.Internal,
    message: err instanceof Error ? err.message : String(err),
  };
}

/** Same image, as far as reference counting of remote snapshots goes. */
export function sameImage(a: RemoteLayerRef, b: RemoteLayerRef): boolean {
  return a.imageRef === b.imageRef && a.manifestDigest === b.manifestDigest;
}

/**
 * Remembers images that just fell back, so the other layers of the same pull fall back too
 * without asking again (and without a report per layer). The oldest are forgotten beyond
 * `maxKeys`, so that a node pulling ever new images keeps a bounded memory.
 */
export class FallbackMemory {
  readonly #until = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxKeys: number;
  readonly #lasting: ReadonlySet<FallbackReason>;

  /** `lasting`: reasons remembered for as long as the process runs (see SnapshotterOptions). */
  constructor(ttlMs: number, options: { lasting?: ReadonlySet<FallbackReason>; maxKeys?: number } = {}) {
    this.#ttlMs = ttlMs;
    this.#maxKeys = options.maxKeys ?? 4096;
    this.#lasting = options.lasting ?? new Set();
  }

  /** True when `key` fell back within the TTL. */
  has(key: string, now = Date.now()): boolean {
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(key);
    return false;
  }

  remember(key: string, reason: FallbackReason, now = Date.now()): void {
    this.#until.delete(key);
    this.#until.set(key, this.#lasting.has(reason) ? Number.POSITIVE_INFINITY : now + this.#ttlMs);
    for (const oldest of this.#until.keys()) {
      if (this.#until.size <= this.#maxKeys) break;
      this.#until.delete(oldest);
    }
  }
}

export function layerUnavailable(layer: RemoteLayerRef, cause?: unknown): GcfsError {
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new GcfsError(
    ErrorCode.LayerUnavailable,
    `layer ${layer.index} (${layer.digest}) of ${layer.imageRef} is not available from gcfsd${why}`,
    { cause, hint: 'gcfsd restores its images at start; check that gcfsd runs and reaches cfsd' },
  );
}
