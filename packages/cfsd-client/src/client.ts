// The entry point gcfsd uses: one channel to cfsd, image sessions opened on it, and the
// events its metrics count.

import { EventEmitter } from 'node:events';
import { type BackoffOptions, describeError, ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import { type containerfs, health } from '@gcfs/proto';
import { connectFailure } from '@gcfs/serving';
import type { CfsdClientEvents } from './events.js';
import { backoffPolicy, fixedPolicy } from './retry.js';
import { CfsdRpc } from './rpc.js';
import { type CallOptions, ImageSession, type RegistryCredentials } from './session.js';
import { type CallKind, isServiceError, statusName } from './status.js';
import type { TlsOptions } from './transport.js';

export interface CfsdClientOptions {
  /** `host:port`, `unix:/path` or any gRPC target (gcfsd's --addr). */
  address: string;
  /** TLS to cfsd; plaintext when absent. */
  tls?: TlsOptions;
  /** Who is calling, for cfsd's monitoring (--client_name, --client_uid, --client_version). */
  client?: Partial<containerfs.ClientInfo>;
  /** Deadline of each attempt, in ms, per call kind (see DEFAULT_DEADLINES_MS). */
  deadlines?: Partial<Record<CallKind, number>>;
  /** Retries of content calls on UNAVAILABLE, RESOURCE_EXHAUSTED and (idempotent) DEADLINE_EXCEEDED. */
  retry?: { maxAttempts?: number; backoff?: BackoffOptions };
  /** --authimage_max_attempts: AuthImage attempts in all on retryable failures. */
  authImageMaxAttempts?: number;
  /** --authimage_retry_interval, in ms. */
  authImageRetryIntervalMs?: number;
  /** --auth_refresh_period, in ms; 0 refreshes only before tokens expire. */
  authRefreshPeriodMs?: number;
}

export const DEFAULT_DEADLINES_MS: Readonly<Record<CallKind, number>> = {
  // The first AuthImage of an image may wait for it to be indexed.
  authImage: 60_000,
  layerIndex: 60_000,
  readBlocks: 10_000,
  prefetchReport: 10_000,
  reportReads: 10_000,
};

export const DEFAULT_RETRY = { maxAttempts: 5, backoff: { initialMs: 100, maxMs: 5_000 } } as const;
export const DEFAULT_AUTH_IMAGE_MAX_ATTEMPTS = 3;
export const DEFAULT_AUTH_IMAGE_RETRY_INTERVAL_MS = 1_000;
export const DEFAULT_AUTH_REFRESH_PERIOD_MS = 30 * 60_000;

/** The gcfsd flags that configure the client, as packages/gcfsd/src/flags.ts names them (ms for durations). */
export interface CfsdClientFlags {
  addr: string;
  auth_refresh_period: number;
  authimage_max_attempts: number;
  authimage_retry_interval: number;
  client_name: string;
  client_uid: string;
  client_version: string;
}

export function clientOptionsFromFlags(flags: CfsdClientFlags): CfsdClientOptions {
  if (flags.addr === '') {
    throw new GcfsError(ErrorCode.Config, 'no cfsd address', { hint: 'set --addr' });
  }
  return {
    address: flags.addr,
    client: { name: flags.client_name, uid: flags.client_uid, version: flags.client_version },
    authImageMaxAttempts: flags.authimage_max_attempts,
    authImageRetryIntervalMs: flags.authimage_retry_interval,
    authRefreshPeriodMs: flags.auth_refresh_period,
  };
}

export interface AuthImageOptions extends CallOptions {
  /** Wait until every layer is indexed or failed (within the AuthImage deadline). */
  wait?: boolean;
  /** os/architecture[/variant]; cfsd's default (linux/amd64) when absent. */
  platform?: string;
}

export class CfsdClient extends EventEmitter<CfsdClientEvents> {
  readonly #rpc: CfsdRpc;
  readonly #clientInfo: containerfs.ClientInfo;
  readonly #refreshPeriodMs: number;
  readonly #refreshBackoff: BackoffOptions;
  readonly #sessions = new Set<ImageSession>();
  #closed = false;

  constructor(options: CfsdClientOptions) {
    super();
    const backoff = options.retry?.backoff ?? DEFAULT_RETRY.backoff;
    const authImageIntervalMs = options.authImageRetryIntervalMs ?? DEFAULT_AUTH_IMAGE_RETRY_INTERVAL_MS;
    this.#rpc = new CfsdRpc(
      {
        address: options.address,
        tls: options.tls,
        deadlines: { ...DEFAULT_DEADLINES_MS, ...options.deadlines },
        retry: backoffPolicy(options.retry?.maxAttempts ?? DEFAULT_RETRY.maxAttempts, backoff),
        authImageRetry: fixedPolicy(
          options.authImageMaxAttempts ?? DEFAULT_AUTH_IMAGE_MAX_ATTEMPTS,
          authImageIntervalMs,
        ),
        reconnect: { initialMs: Math.max(1, backoff.initialMs), maxMs: backoff.maxMs },
      },
      this,
    );
    this.#clientInfo = { name: '', uid: '', version: '', ...options.client };
    this.#refreshPeriodMs = options.authRefreshPeriodMs ?? DEFAULT_AUTH_REFRESH_PERIOD_MS;
    this.#refreshBackoff = { initialMs: Math.max(100, authImageIntervalMs), maxMs: 60_000 };
  }

  /**
   * Ask cfsd for a session on `image` with the caller's registry credentials. The
   * session is returned whatever the image's status (check `streamable`); refusals
   * (ERR_UNAUTHORIZED, ERR_DENIED, ERR_NOT_FOUND...) and exhausted retries throw.
   */
  async authImage(
    image: string,
    credentials: RegistryCredentials = {},
    options: AuthImageOptions = {},
  ): Promise<ImageSession> {
    if (this.#closed) throw new GcfsError(ErrorCode.Aborted, 'the cfsd client is closed');
    registerSecret(credentials.password);
    registerSecret(credentials.identityToken);
    const request: containerfs.AuthImageRequest = {
      image,
      credentials: { username: '', password: '', identityToken: '', ...credentials },
      platform: options.platform ?? '',
      wait: options.wait ?? false,
      client: this.#clientInfo,
    };
    const response = await this.#rpc.authImage(request, options.signal);
    const session: ImageSession = new ImageSession(
      this.#rpc,
      this,
      {
        authRefreshPeriodMs: this.#refreshPeriodMs,
        refreshBackoff: this.#refreshBackoff,
        onClose: () => this.#sessions.delete(session),
      },
      request,
      response,
    );
    this.#sessions.add(session);
    return session;
  }

  /**
   * Whether cfsd answers its gRPC health check as SERVING within `timeoutMs` (one attempt,
   * on the sessions' channel), and why not when it does not: for status pages.
   */
  async health(timeoutMs = 2_000): Promise<{ serving: true } | { serving: false; reason: string }> {
    try {
      const status = await this.#rpc.checkHealth(timeoutMs);
      if (status === health.HealthCheckResponse_ServingStatus.SERVING) return { serving: true };
      return {
        serving: false,
        reason: `its health check answers ${health.HealthCheckResponse_ServingStatus[status]}`,
      };
    } catch (err) {
      const reason = isServiceError(err)
        ? `${statusName(err.code)}: ${connectFailure(err.details)}`
        : describeError(err);
      return { serving: false, reason };
    }
  }

  /** Close every session and the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.#closed = true;
    for (const session of [...this.#sessions]) session.close();
    this.#rpc.close();
  }
}
