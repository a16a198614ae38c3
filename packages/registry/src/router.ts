import { describeError, ErrorCode, GcfsError, isGcfsError, redactUrl } from '@gcfs/core';
import { type Authenticator, repositoryScope } from './auth.js';
import type { RegistryEventEmitter } from './events.js';
import { type Capability, type Endpoint, type HostsOptions, isInsecureHost, loadEndpoints } from './hosts.js';
import type { Reference } from './reference.js';
import type { HttpRequest, HttpResponse, RequestBody } from './transport.js';

/** One request to a repository's API: a path under `/v2/<repo>/`, or a URL the registry gave. */
export interface ApiCall {
  method: HttpRequest['method'];
  path?: string;
  url?: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal | undefined;
  maxAttempts?: number;
}

/** Sends an API call for a repository and returns the response, whatever its status. */
export type Send = (reference: Reference, capability: Capability, call: ApiCall) => Promise<HttpResponse>;

// hosts.toml may change while we run (containerd rereads it too), but not per request.
const ENDPOINTS_TTL_MS = 10_000;

/**
 * Routes API calls to a registry's endpoints: pulls try those able to serve them in order
 * (mirrors, then the upstream), moving on when one cannot serve (network, 5xx, 429, a
 * mirror's 404); pushes go to the upstream only.
 */
export class Router {
  private readonly cache = new Map<string, { at: number; endpoints: Promise<Endpoint[]> }>();
  private readonly plainHttpHosts = new Set<string>();

  constructor(
    private readonly hosts: HostsOptions,
    private readonly auth: Authenticator,
    private readonly events: RegistryEventEmitter,
  ) {}

  /** Plain HTTP is for insecure hosts and endpoints configured with http:// URLs. */
  allowsPlainHttp(url: URL): boolean {
    return this.plainHttpHosts.has(url.host) || isInsecureHost(url, this.hosts.insecureHosts);
  }

  readonly send: Send = async (reference, capability, call) => {
    const all = await this.endpoints(reference.registry);
    const endpoints = all.filter((e) => (capability === 'push' ? !e.mirror : e.capabilities.has(capability)));
    if (endpoints.length === 0) {
      throw new GcfsError(ErrorCode.Config, `no endpoint of ${reference.registry} can ${capability}`, {
        hint: 'check the capabilities in its hosts.toml',
      });
    }
    const scope = repositoryScope(reference.repository, capability === 'push');
    for (const [i, endpoint] of endpoints.entries()) {
      const last = i === endpoints.length - 1;
      let reason: string;
      try {
        // A mirror with a fallback gets one attempt: the next endpoint is the better retry.
        const res = await this.auth.request(
          {
            origin: endpoint.base.origin,
            credentialHost: endpoint.mirror ? endpoint.base.host : reference.registry,
          },
          scope,
          request(endpoint, reference, call, call.maxAttempts ?? (last ? undefined : 1)),
        );
        const cannotServe =
          res.status >= 500 || res.status === 429 || (endpoint.mirror && res.status === 404);
        if (last || !cannotServe) return res;
        await res.body.dump();
        reason = `HTTP ${res.status}`;
      } catch (err) {
        if (last || !isGcfsError(err, ErrorCode.RegistryUnavailable)) throw err;
        reason = describeError(err);
      }
      this.events.emit('fallback', {
        endpoint: redactUrl(endpoint.base),
        next: redactUrl(endpoints[i + 1]!.base),
        reason,
      });
    }
    throw new GcfsError(ErrorCode.Internal, 'unreachable: no endpoint answered');
  };

  private endpoints(registry: string): Promise<Endpoint[]> {
    const cached = this.cache.get(registry);
    if (cached && Date.now() - cached.at < ENDPOINTS_TTL_MS) return cached.endpoints;
    const endpoints = loadEndpoints(registry, this.hosts).then((list) => {
      for (const endpoint of list) {
        if (endpoint.base.protocol === 'http:') this.plainHttpHosts.add(endpoint.base.host);
      }
      return list;
    });
    this.cache.set(registry, { at: Date.now(), endpoints });
    endpoints.catch(() => this.cache.delete(registry));
    return endpoints;
  }
}

function request(endpoint: Endpoint, reference: Reference, call: ApiCall, maxAttempts?: number): HttpRequest {
  const url = call.url ?? new URL(`${endpoint.base.href}/${reference.repository}/${call.path ?? ''}`);
  // Mirrors learn which upstream is meant, as containerd tells them.
  if (endpoint.mirror && !call.url) url.searchParams.set('ns', reference.registry);
  const req: HttpRequest = {
    method: call.method,
    url,
    headers: { ...endpoint.headers, ...call.headers },
    signal: call.signal,
  };
  if (call.body !== undefined) req.body = call.body;
  if (endpoint.tls) req.tls = endpoint.tls;
  if (maxAttempts !== undefined) req.maxAttempts = maxAttempts;
  return req;
}
