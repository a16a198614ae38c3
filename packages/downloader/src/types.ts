// The downloader's vocabulary, shared by the service and its client (the FUSE side).

/** Registry credentials of an image's pull secret. */
export interface PullSecret {
  username?: string;
  password?: string;
  identityToken?: string;
}

/** One layer to fetch and unpack into the layer cache. */
export interface DownloadRequest {
  /** The image the layer belongs to: names the registry and repository. */
  imageName: string;
  /** The layer blob's digest. */
  layerId: string;
  /** `<layer_cache_dir>/sha256=<hex>`: where the complete layer is published. */
  layerDir: string;
  /** `<layer_cache_dir>/untar_sha256:<hex>`: where it is unpacked first. */
  untarDir: string;
  /** The layer's media type; empty means gzip. */
  mediaType?: string;
  /** The blob's size from the manifest; 0 means ask the registry. */
  size?: number;
  /** Absent: anonymous pull. */
  pullSecret?: PullSecret;
}

/** How a download ended, as every caller of the same layer sees it. */
export interface DownloadOutcome {
  succeeded: boolean;
  /** The blob did not match its digest: nothing was published. */
  hasMismatchedHash: boolean;
  /** Why it failed ('' when it succeeded), credentials removed. */
  errorReason: string;
  /** The stable error code of the failure ('' when it succeeded). */
  errorCode: string;
  /** Compressed bytes fetched from the registry. */
  bytes: number;
  seconds: number;
  /** The layer was in the cache already. */
  alreadyPresent: boolean;
}

export type LayerStateKind = 'absent' | 'queued' | 'downloading' | 'done' | 'failed';

/** Where one layer stands, and how busy the downloader is. */
export interface LayerStatus {
  layerId: string;
  state: LayerStateKind;
  /** Compressed bytes fetched so far (or in all, for a failed attempt). */
  bytes: number;
  /** The blob's size, 0 when unknown. */
  size: number;
  errorReason: string;
  errorCode: string;
  hasMismatchedHash: boolean;
  /** Downloads running right now (at most --max_layer_downloads). */
  inFlight: number;
  /** Downloads waiting for a slot. */
  queued: number;
}
