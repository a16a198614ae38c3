// What the admin API shows of a node (gcfs.gcfsd.v1.Admin's Status, ListImages, ListLayers):
// the contract between the daemon that builds it (node-status.ts, admin.ts) and its clients
// (admin-client.ts, gcfsctl). Type-only.

import type { LayerInfo, LayerState } from './layer-state.js';
import type { RegisteredImage } from './served-images.js';

/** A download under way, as the downloader reports it. */
export interface DownloadProgress {
  /** Waiting for a download slot (--max_layer_downloads), or fetching. */
  phase: 'queued' | 'downloading';
  /** Compressed bytes fetched so far, of `size`. */
  bytes: number;
  size: number;
}

/** One layer: its state, its index, why either failed, and its download's progress. */
export interface LayerView extends LayerInfo {
  local: boolean;
  /** Compressed bytes, from the manifest (0 when no image in the tree names it any more). */
  size: number;
  /** Images in the tree that name it (ListLayers; empty in an image's own list). */
  images: string[];
  /** While downloading, when the downloader answered. */
  download?: DownloadProgress;
}

/** An image in use and its layers, bottom first. */
export interface ImageView extends RegisteredImage {
  layers: LayerView[];
}

/** A peer gcfsd depends on: reachable or not, and why not. */
export interface PeerStatus {
  reachable: boolean;
  error?: string;
}

/** The node at a glance (gcfsctl status). */
export interface NodeStatusView {
  version: string;
  pid: number;
  /** Unix ms. */
  startedAt: number;
  uptimeMs: number;
  mountPoint: string;
  /** The FUSE file system is mounted at mountPoint. */
  mounted: boolean;
  /** `address` is gcfsd's --addr, empty when none is configured. */
  cfsd: PeerStatus & { address: string };
  /** `inFlight` and `queued`: the downloader's own count of running and waiting downloads. */
  downloader: PeerStatus & { socket: string; inFlight: number; queued: number };
  /** Disk space its files take and the free and total bytes of its file system. */
  layerCache: {
    dir: string;
    bytes: number;
    layers: number;
    freeBytes: number;
    sizeBytes: number;
    error?: string;
  };
  /** The in-memory block cache (--max_content_cache_size_mb). */
  contentCache: { bytes: number; blocks: number; limitBytes: number };
  /** Images in use. */
  images: number;
  layers: Record<LayerState, number>;
  /** Layer downloads gcfsd has under way (running, queued or waiting to retry). */
  downloadsInFlight: number;
}
