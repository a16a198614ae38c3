import { registerBuildInfo } from '@gcfs/serving';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DownloadOutcome } from '../types.js';
import type { LayerDownloader } from './manager.js';

/** The downloader's Prometheus metrics, fed by the download manager's events. */
export class DownloaderMetrics {
  readonly registry = new Registry();
  readonly #layers = new Counter({
    name: 'gcfsd_downloader_layers_total',
    help: 'Download calls answered, by result: downloaded, present (already in the cache), failed',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly #failures = new Counter({
    name: 'gcfsd_downloader_failures_total',
    help: 'Failed layer downloads by reason (stable error code, e.g. ERR_DIGEST_MISMATCH)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly #bytes = new Counter({
    name: 'gcfsd_downloader_bytes_total',
    help: 'Compressed layer bytes fetched from registries (failed attempts included)',
    registers: [this.registry],
  });
  readonly #tarBytes = new Counter({
    name: 'gcfsd_downloader_untarred_bytes_total',
    help: 'Uncompressed tar bytes unpacked into the layer cache',
    registers: [this.registry],
  });
  readonly #seconds = new Histogram({
    name: 'gcfsd_downloader_layer_duration_seconds',
    help: 'Time from a download getting its slot to the layer being published (or failing)',
    labelNames: ['result'] as const,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [this.registry],
  });

  constructor(downloader: LayerDownloader) {
    registerBuildInfo(this.registry);
    new Gauge({
      name: 'gcfsd_downloader_in_flight',
      help: 'Layer downloads running now (at most --max_layer_downloads)',
      registers: [this.registry],
      collect() {
        this.set(downloader.inFlight);
      },
    });
    new Gauge({
      name: 'gcfsd_downloader_queued',
      help: 'Layer downloads waiting for a slot',
      registers: [this.registry],
      collect() {
        this.set(downloader.queued);
      },
    });
    downloader.on('untarred', ({ tarBytes }) => this.#tarBytes.inc(tarBytes));
    // Per download (however many callers joined it): bytes, time, failures.
    downloader.on('finished', ({ outcome }) => {
      if (outcome.alreadyPresent) return;
      this.#bytes.inc(outcome.bytes);
      this.#seconds.observe({ result: resultOf(outcome) }, outcome.seconds);
      if (!outcome.succeeded) this.#failures.inc({ reason: outcome.errorCode });
    });
  }

  /** Per Download call answered. */
  observeResponse(outcome: DownloadOutcome): void {
    this.#layers.inc({ result: resultOf(outcome) });
  }
}

function resultOf(outcome: DownloadOutcome): 'present' | 'downloaded' | 'failed' {
  return outcome.alreadyPresent ? 'present' : outcome.succeeded ? 'downloaded' : 'failed';
}
