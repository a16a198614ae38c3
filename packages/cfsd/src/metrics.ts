import { registerBuildInfo, toServiceError } from '@gcfs/serving';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LayerCompactor } from './layer-compactor.js';
import type { LayerIndexer } from './layer-indexer.js';

/** Anything that counts block cache hits and misses (the cached store does). */
export interface CacheStats {
  stats(): { hits: number; misses: number };
}

/** cfsd's Prometheus metrics: requests, bytes served, indexing, compaction, block cache. */
export class CfsdMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'cfsd_requests_total',
    help: 'gRPC calls served, by method and status code',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: 'cfsd_request_duration_seconds',
    help: 'gRPC call latency by method',
    labelNames: ['method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
    registers: [this.registry],
  });
  private readonly servedBytes = new Counter({
    name: 'cfsd_block_bytes_served_total',
    help: 'Bytes of (compressed) blocks returned by ReadBlocks',
    registers: [this.registry],
  });
  private readonly indexSeconds = new Histogram({
    name: 'cfsd_layer_index_duration_seconds',
    help: 'Time to fetch, decompress and index one layer',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  private readonly indexedBytes = new Counter({
    name: 'cfsd_layer_index_bytes_total',
    help: 'Compressed layer bytes indexed',
    registers: [this.registry],
  });
  private readonly indexFailures = new Counter({
    name: 'cfsd_layer_index_failures_total',
    help: 'Layers that could not be indexed; permanent="true" marks the layer not streamable',
    labelNames: ['permanent'] as const,
    registers: [this.registry],
  });

  private readonly compacted = new Counter({
    name: 'cfsd_layers_compacted_total',
    help: 'Layers indexed with raw blocks whose stored copy was replaced by a compressed one',
    registers: [this.registry],
  });
  private readonly compactedBytes = new Counter({
    name: 'cfsd_compaction_bytes_total',
    help: 'Stored block bytes of compacted layers, before (raw) and after compaction',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });
  private readonly compactionFailures = new Counter({
    name: 'cfsd_layer_compaction_failures_total',
    help: 'Compactions that failed (the layer keeps its raw copy and is still served)',
    registers: [this.registry],
  });

  constructor(cache?: CacheStats) {
    registerBuildInfo(this.registry);
    if (cache) {
      const registry = this.registry;
      new Gauge({
        name: 'cfsd_block_cache_hit_ratio',
        help: 'Hits / (hits + misses) of the in-memory hot block cache since start',
        registers: [registry],
        collect() {
          const { hits, misses } = cache.stats();
          this.set(hits + misses === 0 ? 0 : hits / (hits + misses));
        },
      });
      for (const kind of ['hits', 'misses'] as const) {
        new Counter({
          name: `cfsd_block_cache_${kind}_total`,
          help: `Block reads that the hot block cache ${kind === 'hits' ? 'answered' : 'passed to the store'}`,
          registers: [registry],
          collect() {
            this.reset();
            this.inc(cache.stats()[kind]);
          },
        });
      }
    }
  }

  observeCall(method: string, err: unknown, seconds: number, servedBytes?: number): void {
    const code = err === undefined ? GrpcStatus.OK : (toServiceError(err).code ?? GrpcStatus.UNKNOWN);
    this.requests.inc({ method, code: GrpcStatus[code] });
    this.requestSeconds.observe({ method }, seconds);
    if (servedBytes) this.servedBytes.inc(servedBytes);
  }

  watchIndexer(indexer: LayerIndexer): void {
    indexer.on('indexed', ({ seconds, compressedBytes }) => {
      this.indexSeconds.observe(seconds);
      this.indexedBytes.inc(compressedBytes);
    });
    indexer.on('failed', ({ permanent }) => this.indexFailures.inc({ permanent: String(permanent) }));
  }

  watchCompactor(compactor: LayerCompactor): void {
    compactor.on('compacted', ({ bytesBefore, bytesAfter }) => {
      this.compacted.inc();
      this.compactedBytes.inc({ stage: 'before' }, bytesBefore);
      this.compactedBytes.inc({ stage: 'after' }, bytesAfter);
    });
    compactor.on('failed', () => this.compactionFailures.inc());
    new Gauge({
      name: 'cfsd_layers_compaction_pending',
      help: 'Layers stored with raw blocks, waiting for compaction',
      registers: [this.registry],
      collect() {
        this.set(compactor.pending);
      },
    });
  }
}
