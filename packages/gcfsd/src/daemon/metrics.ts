// Prometheus metrics on --port: on-demand reads, what was fetched from cfsd and how fast,
// the content cache, layer downloads, GC. Every series carries the client's name, uid and
// version (--client_*), as GKE's gcfsd labels its own.

import { readFile } from 'node:fs/promises';
import { registerBuildInfo } from '@gcfs/serving';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { GcResult } from './gc.js';
import type { DownloadResult } from './layer-downloads.js';
import { LAYER_STATES, type LayerState } from './layer-state.js';

export interface ClientLabels {
  client_name: string;
  client_uid: string;
  client_version: string;
}

/** --client_uid, else the machine id, else ''. */
export async function resolveClientUid(flag: string, machineIdPath = '/etc/machine-id'): Promise<string> {
  if (flag !== '') return flag;
  try {
    return (await readFile(machineIdPath, 'utf8')).trim();
  } catch {
    return '';
  }
}

/** Values read when metrics are scraped. */
export interface GaugeSources {
  imagesInUse(): number;
  downloadsInFlight(): number;
  layers(): Record<LayerState, number>;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  #sources: GaugeSources | undefined;
  readonly reads: Counter<'source'>;
  readonly readBytes: Counter<'source'>;
  readonly backendBytes: Counter;
  readonly backendBlocks: Counter;
  readonly blockFetchSeconds: Histogram;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly prefetchedBytes: Counter;
  readonly downloads: Counter<'result'>;
  readonly downloadBytes: Counter;
  readonly downloadSeconds: Histogram;
  readonly downloadsInFlight: Gauge;
  readonly layers: Gauge<'state'>;
  readonly downloadsGivenUp: Counter;
  readonly gcRuns: Counter;
  readonly gcRemoved: Counter<'kind'>;
  readonly gcSeconds: Histogram;
  readonly imagesInUse: Gauge;
  readonly streamingFallbacks: Counter<'reason'>;
  readonly remoteSnapshots: Counter;
  readonly keychainUpdates: Counter<'source'>;

  constructor(labels: ClientLabels) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ ...labels });
    collectDefaultMetrics({ register: this.registry, prefix: 'gcfsd_' });
    registerBuildInfo(this.registry);
    this.reads = new Counter({
      name: 'gcfsd_fuse_reads_total',
      help: 'File read requests served through FUSE, by source (remote: on demand from cfsd, local)',
      labelNames: ['source'],
      registers,
    });
    this.readBytes = new Counter({
      name: 'gcfsd_fuse_read_bytes_total',
      help: 'Bytes returned to FUSE reads, by source',
      labelNames: ['source'],
      registers,
    });
    this.backendBytes = new Counter({
      name: 'gcfsd_backend_fetched_bytes_total',
      help: 'Uncompressed bytes of blocks fetched from cfsd',
      registers,
    });
    this.backendBlocks = new Counter({
      name: 'gcfsd_backend_fetched_blocks_total',
      help: 'Blocks fetched from cfsd',
      registers,
    });
    this.blockFetchSeconds = new Histogram({
      name: 'gcfsd_backend_block_fetch_seconds',
      help: 'Latency of ReadBlocks calls to cfsd',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.cacheHits = new Counter({
      name: 'gcfsd_content_cache_hits_total',
      help: 'Block lookups served by the content cache',
      registers,
    });
    this.cacheMisses = new Counter({
      name: 'gcfsd_content_cache_misses_total',
      help: 'Block lookups the content cache missed',
      registers,
    });
    this.prefetchedBytes = new Counter({
      name: 'gcfsd_prefetched_bytes_total',
      help: 'Bytes loaded into the content cache by prefetching (also counted as fetched from cfsd)',
      registers,
    });
    this.downloads = new Counter({
      name: 'gcfsd_layer_downloads_total',
      help: 'Layer downloads finished, by result (succeeded, failed, cached)',
      labelNames: ['result'],
      registers,
    });
    this.downloadBytes = new Counter({
      name: 'gcfsd_layer_download_bytes_total',
      help: 'Compressed layer bytes the downloader fetched',
      registers,
    });
    this.downloadSeconds = new Histogram({
      name: 'gcfsd_layer_download_seconds',
      help: 'Time from a layer download request to the layer being in place',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    const sources = () => this.#sources;
    this.downloadsInFlight = new Gauge({
      name: 'gcfsd_layer_downloads_in_flight',
      help: 'Layer downloads under way',
      registers,
      collect() {
        this.set(sources()?.downloadsInFlight() ?? 0);
      },
    });
    this.layers = new Gauge({
      name: 'gcfsd_layers',
      help: 'Layers on the node, by state (attached, streamed, downloading, local, failed)',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = sources()?.layers();
        for (const state of LAYER_STATES) this.set({ state }, counts?.[state] ?? 0);
      },
    });
    this.downloadsGivenUp = new Counter({
      name: 'gcfsd_layer_downloads_given_up_total',
      help: 'Layers the downloader failed too often: they stay streamed until registered again or gcfsd restarts',
      registers,
    });
    this.gcRuns = new Counter({ name: 'gcfsd_gc_runs_total', help: 'Garbage collection passes', registers });
    this.gcRemoved = new Counter({
      name: 'gcfsd_gc_removed_total',
      help: 'Layers and images garbage collection removed',
      labelNames: ['kind'],
      registers,
    });
    this.gcSeconds = new Histogram({
      name: 'gcfsd_gc_seconds',
      help: 'Duration of garbage collection passes',
      registers,
    });
    this.imagesInUse = new Gauge({
      name: 'gcfsd_images_in_use',
      help: 'Images registered and in use',
      registers,
      collect() {
        this.set(sources()?.imagesInUse() ?? 0);
      },
    });

    this.streamingFallbacks = new Counter({
      name: 'gcfsd_image_streaming_fallbacks_total',
      help: 'Images containerd pulled normally because they could not be streamed, by reason (an error code, or MissingLabels)',
      labelNames: ['reason'],
      registers,
    });
    this.remoteSnapshots = new Counter({
      name: 'gcfsd_remote_snapshots_total',
      help: 'Layers committed as remote snapshots (containerd did not pull them)',
      registers,
    });
    this.keychainUpdates = new Counter({
      name: 'gcfsd_keychain_updates_total',
      help: 'Credentials the keychain recorded, by source (pull_image: a CRI PullImage with auth, update_creds)',
      labelNames: ['source'],
      registers,
    });
  }

  watch(sources: GaugeSources): void {
    this.#sources = sources;
  }

  /** A ReadBlocks call finished (CfsdClient's `blockFetch` event). */
  blockFetched(event: { count: number; bytes: number; ms: number }): void {
    this.backendBlocks.inc(event.count);
    this.backendBytes.inc(event.bytes);
    this.blockFetchSeconds.observe(event.ms / 1000);
  }

  downloaded(result: DownloadResult): void {
    const outcome = !result.succeeded ? 'failed' : result.alreadyPresent ? 'cached' : 'succeeded';
    this.downloads.inc({ result: outcome });
    this.downloadBytes.inc(result.bytes);
    if (result.succeeded && !result.alreadyPresent) this.downloadSeconds.observe(result.seconds);
  }

  /** A layer changed state to `to` (the registrar's onLayerTransition; undefined: removed). */
  layerTransition(to: LayerState | undefined): void {
    if (to === 'failed') this.downloadsGivenUp.inc();
  }

  collected(result: GcResult): void {
    this.gcRuns.inc();
    this.gcRemoved.inc({ kind: 'layer' }, result.layers.length);
    this.gcRemoved.inc({ kind: 'image' }, result.images.length);
    this.gcSeconds.observe(result.ms / 1000);
  }
}
