// What the admin API shows of the node (gcfsctl status, images, layers): gcfsd, its mount,
// whether cfsd and the downloader answer and why not, the layer cache on disk and the content
// cache in memory, and every layer's state with its download's progress, which only the
// downloader knows (GetLayerState: bytes fetched so far).

import { statfs } from 'node:fs/promises';
import { describeError, diskUsage } from '@gcfs/core';
import type { LayerStatus } from '@gcfs/downloader';
import { connectFailure } from '@gcfs/serving';
import type { LayerView, NodeStatusView, PeerStatus } from './admin-types.js';
import { listCachedLayers } from './layer-dirs.js';
import type { Registrar } from './registrar.js';

/** The downloader's GetLayerState (DownloaderClient has it). */
export interface DownloadStates {
  state(layerId: string): Promise<LayerStatus>;
}

export interface NodeStatusOptions {
  version: string;
  /** Unix ms. */
  startedAt: number;
  mountPoint: string;
  cacheDir: string;
  contentCacheLimitBytes: number;
  registrar: Pick<Registrar, 'layers' | 'inUse' | 'layerCounts' | 'downloadsInFlight'>;
  tree: {
    /** The in-memory content cache. */
    stats(): { cacheBytes: number; cacheBlocks: number };
    mounted(): Promise<boolean>;
  };
  downloader: { socket: string; states: DownloadStates };
  /** Absent without --addr. */
  cfsd?: { address: string; health(): Promise<{ serving: true } | { serving: false; reason: string }> };
}

/** Any well-formed digest: the downloader's answer for it carries its counts of downloads. */
const PROBE_LAYER = `sha256:${'0'.repeat(64)}`;

export class NodeStatus {
  readonly #o: NodeStatusOptions;

  constructor(options: NodeStatusOptions) {
    this.#o = options;
  }

  async status(): Promise<NodeStatusView> {
    const o = this.#o;
    const [mounted, cfsd, downloader, layerCache] = await Promise.all([
      o.tree.mounted(),
      this.#cfsd(),
      this.#downloader(),
      this.#layerCache(),
    ]);
    const content = o.tree.stats();
    return {
      version: o.version,
      pid: process.pid,
      startedAt: o.startedAt,
      uptimeMs: Date.now() - o.startedAt,
      mountPoint: o.mountPoint,
      mounted,
      cfsd,
      downloader,
      layerCache,
      contentCache: {
        bytes: content.cacheBytes,
        blocks: content.cacheBlocks,
        limitBytes: o.contentCacheLimitBytes,
      },
      images: o.registrar.inUse().images.size,
      layers: o.registrar.layerCounts(),
      downloadsInFlight: o.registrar.downloadsInFlight,
    };
  }

  /** Every layer the node knows (or those of `digests`); those downloading with the downloader's progress. */
  layers(digests?: ReadonlySet<string>): Promise<LayerView[]> {
    const known = this.#o.registrar.layers();
    return Promise.all(
      (digests === undefined ? known : known.filter((layer) => digests.has(layer.digest))).map(
        async (layer): Promise<LayerView> => {
          const view: LayerView = { ...layer, local: layer.state === 'local' };
          if (layer.state !== 'downloading') return view;
          const answer = await this.#o.downloader.states.state(layer.digest).catch(() => undefined);
          if (answer?.state === 'queued' || answer?.state === 'downloading') {
            view.download = { phase: answer.state, bytes: answer.bytes, size: answer.size || layer.size };
          }
          return view;
        },
      ),
    );
  }

  async #cfsd(): Promise<NodeStatusView['cfsd']> {
    const cfsd = this.#o.cfsd;
    if (cfsd === undefined)
      return {
        address: '',
        reachable: false,
        error: 'no --addr: every image is pulled normally (ERR_NO_BACKEND)',
      };
    const health = await cfsd.health();
    return { address: cfsd.address, ...(health.serving ? { reachable: true } : peerDown(health.reason)) };
  }

  async #downloader(): Promise<NodeStatusView['downloader']> {
    const socket = this.#o.downloader.socket;
    try {
      const { inFlight, queued } = await this.#o.downloader.states.state(PROBE_LAYER);
      return { socket, reachable: true, inFlight, queued };
    } catch (err) {
      // The call's own message, without its causes: grpc-js repeats itself in them.
      const reason = err instanceof Error ? connectFailure(err.message) : describeError(err);
      return { socket, ...peerDown(reason), inFlight: 0, queued: 0 };
    }
  }

  async #layerCache(): Promise<NodeStatusView['layerCache']> {
    const dir = this.#o.cacheDir;
    try {
      const [usage, layers, fs] = await Promise.all([diskUsage(dir), listCachedLayers(dir), statfs(dir)]);
      return {
        dir,
        bytes: usage.size,
        layers: layers.length,
        freeBytes: fs.bavail * fs.bsize,
        sizeBytes: fs.blocks * fs.bsize,
      };
    } catch (err) {
      // A layer removed while it was measured, a dir gone: said, not fatal to the status.
      return { dir, bytes: 0, layers: 0, freeBytes: 0, sizeBytes: 0, error: describeError(err) };
    }
  }
}

function peerDown(error: string): PeerStatus {
  return { reachable: false, error };
}
