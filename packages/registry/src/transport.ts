import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import {
  abortError,
  type BackoffOptions,
  backoffDelay,
  describeError,
  ErrorCode,
  GcfsError,
  Limits,
  redactUrl,
  sleep,
} from '@gcfs/core';
import { Agent, type Dispatcher } from 'undici';
import type { RegistryEventEmitter } from './events.js';
import { header } from './response.js';

/** A request body that can be sent again on retry: bytes, or a factory of fresh streams. */
export type RequestBody = Uint8Array | (() => Readable);

/** TLS settings of one endpoint (hosts.toml `skip_verify` and `ca`). */
export interface TlsOptions {
  skipVerify: boolean;
  ca: readonly string[];
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: URL;
  headers?: Record<string, string | string[]>;
  body?: RequestBody;
  signal?: AbortSignal | undefined;
  /** Overrides the transport's bound, e.g. 1 for a mirror that has a fallback. */
  maxAttempts?: number;
  /** Applied while the request stays on the origin of `url`. */
  tls?: TlsOptions;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: URL;
}

export interface TransportOptions {
  maxAttempts: number;
  backoff: BackoffOptions;
  userAgent: string;
  events: RegistryEventEmitter;
  /** Whether plain HTTP may be used to reach this URL. */
  allowPlainHttp: (url: URL) => boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const MAX_RETRY_AFTER_MS = 30_000;
// Headers that may follow a redirect to another origin; everything else (Authorization,
// headers configured in hosts.toml) stays with the origin it was meant for.
const CROSS_ORIGIN_HEADERS = new Set(['accept', 'range', 'user-agent', 'content-type', 'content-length']);
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** True for connection failures worth retrying (resets, refusals, timeouts), anywhere in the cause chain. */
export function isRetryableNetworkError(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 6; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function retryAfterMs(res: HttpResponse): number | undefined {
  const value = header(res, 'retry-after');
  if (value === undefined) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS) : undefined;
}

/**
 * The one HTTP client of the project: undici with bounded retries (429, 5xx, connection
 * failures), manual redirects that never carry credentials to another origin, and events.
 */
export class Transport {
  private readonly options: TransportOptions;
  private readonly agents = new Map<string, Promise<Agent>>();

  constructor(options: TransportOptions) {
    this.options = options;
  }

  /** Send with retries. Returns the final response whatever its status; callers map errors. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const maxAttempts = Math.max(1, req.maxAttempts ?? this.options.maxAttempts);
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.followRedirects(req, attempt);
      } catch (err) {
        if (req.signal?.aborted) throw abortError(req.signal);
        if (err instanceof GcfsError) throw err;
        const failure = new GcfsError(
          ErrorCode.RegistryUnavailable,
          `${req.method} ${redactUrl(req.url)}: ${describeError(err)}`,
          { cause: err },
        );
        if (!isRetryableNetworkError(err) || attempt >= maxAttempts) throw failure;
        await this.pause(req, attempt, undefined, failure.message);
        continue;
      }
      if (!isRetryableStatus(res.status) || attempt >= maxAttempts) return res;
      await res.body.dump();
      await this.pause(req, attempt, retryAfterMs(res), `HTTP ${res.status}`);
    }
  }

  /** Close pooled connections. */
  async close(): Promise<void> {
    const agents = await Promise.all(this.agents.values());
    this.agents.clear();
    await Promise.all(agents.map((agent) => agent.close()));
  }

  private async pause(req: HttpRequest, attempt: number, hinted: number | undefined, reason: string) {
    const delayMs = hinted ?? backoffDelay(attempt, this.options.backoff);
    this.options.events.emit('retry', {
      method: req.method,
      url: redactUrl(req.url),
      attempt,
      delayMs,
      reason,
    });
    await sleep(delayMs, req.signal);
  }

  private async followRedirects(req: HttpRequest, attempt: number): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let headers = { 'user-agent': this.options.userAgent, ...req.headers };
    let body = req.body;
    for (let hops = 0; ; hops++) {
      const tls = url.origin === req.url.origin ? req.tls : undefined;
      const res = await this.send({ method, url, headers, body, signal: req.signal, tls }, attempt);
      const location = header(res, 'location');
      if (!REDIRECTS.has(res.status) || location === undefined || method === 'PATCH' || method === 'PUT') {
        return res;
      }
      await res.body.dump();
      if (hops >= MAX_REDIRECTS) {
        throw new GcfsError(
          ErrorCode.RegistryProtocol,
          `${req.method} ${redactUrl(req.url)}: too many redirects`,
        );
      }
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        headers = Object.fromEntries(
          Object.entries(headers).filter(([name]) => CROSS_ORIGIN_HEADERS.has(name.toLowerCase())),
        ) as typeof headers;
      }
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }

  private async send(req: HttpRequest, attempt: number): Promise<HttpResponse> {
    const { url } = req;
    if (url.protocol === 'http:' && !this.options.allowPlainHttp(url)) {
      throw new GcfsError(ErrorCode.InsecureNotAllowed, `refusing plain HTTP to ${redactUrl(url.origin)}`, {
        hint: `use https, or configure ${url.host} as an insecure host (or an http:// endpoint in hosts.toml)`,
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GcfsError(ErrorCode.RegistryProtocol, `unsupported URL scheme ${url.protocol}`);
    }
    const dispatcher = await this.agent(req.tls);
    const started = performance.now();
    const event = { method: req.method, url: redactUrl(url), attempt };
    try {
      const body = req.body === undefined || req.body instanceof Uint8Array ? req.body : req.body();
      const res = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers: req.headers ?? {},
        body: body ?? null,
        signal: req.signal ?? null,
      });
      this.options.events.emit('request', {
        ...event,
        status: res.statusCode,
        durationMs: performance.now() - started,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    } catch (err) {
      this.options.events.emit('request', {
        ...event,
        durationMs: performance.now() - started,
        error: describeError(err),
      });
      throw err;
    }
  }

  // One connection pool per TLS configuration.
  private agent(tls: TlsOptions | undefined): Promise<Agent> {
    const key = tls ? JSON.stringify(tls) : '';
    let agent = this.agents.get(key);
    if (!agent) {
      agent = (async () => {
        if (!tls) return new Agent({ maxHeaderSize: Limits.headerBytes });
        const ca = await Promise.all(
          tls.ca.map((file) =>
            readFile(file, 'utf8').catch((err: unknown) => {
              throw new GcfsError(ErrorCode.Config, `cannot read CA certificate ${file}`, { cause: err });
            }),
          ),
        );
        // Like containerd, configured CAs add to the system roots rather than replace them.
        return new Agent({
          maxHeaderSize: Limits.headerBytes,
          connect: {
            rejectUnauthorized: !tls.skipVerify,
            ...(ca.length > 0 ? { ca: [...rootCertificates, ...ca] } : {}),
          },
        });
      })();
      this.agents.set(key, agent);
      agent.catch(() => this.agents.delete(key));
    }
    return agent;
  }
}
