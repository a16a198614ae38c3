// The five ContainerFS calls with their deadlines, retries and `request`/`retry` events.
// Answers are the raw protobuf messages; sessions (session.ts) give them meaning.

import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { containerfs, health } from '@gcfs/proto';
import type { CfsdClientEvents } from './events.js';
import { type RetryPolicy, withRetry } from './retry.js';
import { type CallKind, isServiceError, statusName } from './status.js';
import { channelCredentials, channelOptions, streamCall, type TlsOptions, unaryCall } from './transport.js';

export interface RpcOptions {
  /** `host:port`, `unix:/path` or any gRPC target (`dns:///cfsd.example:443`). */
  address: string;
  tls: TlsOptions | undefined;
  /** Per attempt, in ms. */
  deadlines: Record<CallKind, number>;
  /** Content calls. */
  retry: RetryPolicy;
  /** AuthImage has its own attempts and interval (gcfsd's --authimage_* flags). */
  authImageRetry: RetryPolicy;
  reconnect: { initialMs: number; maxMs: number };
}

export class CfsdRpc {
  readonly #client: containerfs.ContainerFSClient;
  readonly #health: health.HealthClient;
  readonly #options: RpcOptions;
  readonly #events: EventEmitter<CfsdClientEvents>;

  constructor(options: RpcOptions, events: EventEmitter<CfsdClientEvents>) {
    this.#options = options;
    this.#events = events;
    this.#client = new containerfs.ContainerFSClient(
      options.address,
      channelCredentials(options.tls),
      channelOptions(options.reconnect),
    );
    this.#health = new health.HealthClient(options.address, channelCredentials(options.tls), {
      channelOverride: this.#client.getChannel(),
    });
  }

  /** grpc.health.v1's Check of the whole server on the same channel: one attempt, no events. */
  async checkHealth(deadlineMs: number): Promise<health.HealthCheckResponse_ServingStatus> {
    const c = this.#health;
    return (await unaryCall(c.check.bind(c), { service: '' }, deadlineMs)).status;
  }

  authImage(
    request: containerfs.AuthImageRequest,
    signal?: AbortSignal,
  ): Promise<containerfs.AuthImageResponse> {
    const c = this.#client;
    return this.#call('authImage', signal, (deadline) =>
      unaryCall(c.authImage.bind(c), request, deadline, signal),
    );
  }

  getLayerIndex(
    request: containerfs.GetLayerIndexRequest,
    signal?: AbortSignal,
  ): Promise<containerfs.LayerIndexChunk[]> {
    const c = this.#client;
    return this.#call('layerIndex', signal, (deadline) =>
      streamCall(c.getLayerIndex.bind(c), request, deadline, signal),
    );
  }

  readBlocks(
    request: containerfs.ReadBlocksRequest,
    signal?: AbortSignal,
  ): Promise<containerfs.ReadBlocksResponse> {
    const c = this.#client;
    return this.#call('readBlocks', signal, (deadline) =>
      unaryCall(c.readBlocks.bind(c), request, deadline, signal),
    );
  }

  getPrefetchImageReport(
    request: containerfs.GetPrefetchImageReportRequest,
    signal?: AbortSignal,
  ): Promise<containerfs.PrefetchImageReport> {
    const c = this.#client;
    return this.#call('prefetchReport', signal, (deadline) =>
      unaryCall(c.getPrefetchImageReport.bind(c), request, deadline, signal),
    );
  }

  reportImageReads(
    request: containerfs.ReportImageReadsRequest,
    signal?: AbortSignal,
  ): Promise<containerfs.ReportImageReadsResponse> {
    const c = this.#client;
    return this.#call('reportReads', signal, (deadline) =>
      unaryCall(c.reportImageReads.bind(c), request, deadline, signal),
    );
  }

  close(): void {
    this.#client.close();
  }

  async #call<T>(kind: CallKind, signal: AbortSignal | undefined, run: (deadlineMs: number) => Promise<T>) {
    const policy = kind === 'authImage' ? this.#options.authImageRetry : this.#options.retry;
    const deadlineMs = this.#options.deadlines[kind];
    return withRetry(
      kind,
      policy,
      async (attempt) => {
        const started = performance.now();
        const report = (code: string) =>
          this.#events.emit('request', { call: kind, attempt, code, ms: performance.now() - started });
        try {
          const result = await run(deadlineMs);
          report('OK');
          return result;
        } catch (err) {
          report(isServiceError(err) ? statusName(err.code) : 'ERROR');
          throw err;
        }
      },
      (info) => this.#events.emit('retry', info),
      signal,
    );
  }
}
