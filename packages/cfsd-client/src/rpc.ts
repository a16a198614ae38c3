// The five ContainerFS calls with their deadlines, retries and `request`/`retry` events.
// Answers are the raw protobuf messages; sessions (session.ts) give them meaning.

import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { containerfs } from '@gcfs/proto';
import { connectivityState } from '@grpc/grpc-js';
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

  /**
   * Whether the channel to cfsd is connected, or connects within `timeoutMs` (an idle
   * channel is asked to connect): for readiness probes, without a call of the service.
   */
  async reachable(timeoutMs: number): Promise<boolean> {
    const channel = this.#client.getChannel();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.READY) return true;
      if (state === connectivityState.SHUTDOWN || Date.now() >= deadline) return false;
      const changed = await new Promise<boolean>((resolve) =>
        channel.watchConnectivityState(state, deadline, (err) => resolve(err === undefined)),
      );
      if (!changed) return false;
    }
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
