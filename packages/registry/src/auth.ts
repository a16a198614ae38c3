import {
  checkLength,
  ErrorCode,
  GcfsError,
  Limits,
  redactUrl,
  registerSecret,
  SingleFlight,
} from '@gcfs/core';
import type { Credential, CredentialSource } from './credentials.js';
import type { RegistryEventEmitter } from './events.js';
import { header, readBody, responseError } from './response.js';
import type { HttpRequest, HttpResponse, Transport } from './transport.js';

/** One challenge of a WWW-Authenticate header; scheme in lower case, parameter names too. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const QUOTED = /"((?:[^"\\]|\\.)*)"/y;
const TOKEN68_END = /=*\s*(?:,|$)/y;

function matchAt(re: RegExp, text: string, at: number): RegExpExecArray | null {
  re.lastIndex = at;
  return re.exec(text);
}

/** Parse a WWW-Authenticate value (RFC 9110 §11.6.1): several challenges, quoted or bare params. */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const challenges: Challenge[] = [];
  let current: Challenge | undefined;
  // A token68 (`Negotiate abc==`) may only come right after its scheme.
  let token68Allowed = false;
  let i = 0;
  while (i < value.length) {
    let sawComma = false;
    for (; i < value.length && /[\s,]/.test(value[i]!); i++) {
      if (value[i] === ',') sawComma = true;
    }
    const token = matchAt(TOKEN, value, i);
    if (!token) break;
    i += token[0].length;
    const afterSpace = i + (matchAt(/\s*/y, value, i)?.[0].length ?? 0);
    if (current && value[afterSpace] === '=' && !matchAt(TOKEN68_END, value, afterSpace)) {
      i = afterSpace + 1;
      while (value[i] === ' ' || value[i] === '\t') i++;
      const quoted = matchAt(QUOTED, value, i);
      const bare = quoted ? null : matchAt(TOKEN, value, i);
      i += (quoted ?? bare)?.[0].length ?? 0;
      current.params[token[0].toLowerCase()] = quoted
        ? quoted[1]!.replace(/\\(.)/g, '$1')
        : (bare?.[0] ?? '');
      token68Allowed = false;
    } else if (current && token68Allowed && !sawComma) {
      i = afterSpace + (matchAt(/=*/y, value, afterSpace)?.[0].length ?? 0);
      token68Allowed = false;
    } else {
      current = { scheme: token[0].toLowerCase(), params: {} };
      challenges.push(current);
      token68Allowed = true;
    }
  }
  return challenges;
}

/** The scope a token must grant to pull from (or push to) a repository. */
export function repositoryScope(repository: string, push = false): string {
  return `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
}

/** Where requests go and whose credentials apply. */
export interface AuthTarget {
  /** Origin (scheme://host:port) of the endpoint. */
  origin: string;
  /** The host to look credentials up for. */
  credentialHost: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const DEFAULT_TOKEN_LIFETIME_SEC = 60;

function basic(credential: Credential | undefined): string | undefined {
  if (!credential?.username || credential.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

/**
 * Anonymous, Basic and Bearer (token flow) authentication in front of the transport.
 * Learns each endpoint's challenge on its first 401, then authenticates up front; tokens
 * are cached per (endpoint, scope) until shortly before they expire, and a 401 with a
 * cached token drops it and fetches a new one, once.
 */
export class Authenticator {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new SingleFlight<string, string>();

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialSource,
    private readonly events: RegistryEventEmitter,
  ) {}

  async request(target: AuthTarget, scope: string, req: HttpRequest): Promise<HttpResponse> {
    // Credentials only ever go to the endpoint's own origin.
    if (req.url.origin !== target.origin) return this.transport.request(req);
    const first = await this.authorization(target, scope, false);
    const res = await this.transport.request(withAuthorization(req, first));
    if (res.status !== 401) return res;
    const offered = parseWwwAuthenticate(header(res, 'www-authenticate') ?? '');
    const challenge = offered.find((c) => c.scheme === 'bearer') ?? offered.find((c) => c.scheme === 'basic');
    if (!challenge) return res;
    this.challenges.set(target.origin, challenge);
    this.tokens.delete(tokenKey(target, scope));
    const second = await this.authorization(target, scope, true);
    if (second === undefined || (challenge.scheme === 'basic' && second === first)) return res;
    await res.body.dump();
    return this.transport.request(withAuthorization(req, second));
  }

  private async authorization(
    target: AuthTarget,
    scope: string,
    fresh: boolean,
  ): Promise<string | undefined> {
    const challenge = this.challenges.get(target.origin);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return basic(await this.credentials.get(target.credentialHost));
    const key = tokenKey(target, scope);
    const cached = this.tokens.get(key);
    if (!fresh && cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    return `Bearer ${await this.pending.run(key, () => this.fetchToken(target, challenge, scope))}`;
  }

  private async fetchToken(target: AuthTarget, challenge: Challenge, scope: string): Promise<string> {
    const { realm, service } = challenge.params;
    if (!realm) {
      throw new GcfsError(ErrorCode.RegistryProtocol, `${target.origin}: Bearer challenge without a realm`);
    }
    const url = new URL(realm, target.origin);
    const scopes = [...new Set([scope, challenge.params.scope].filter((s): s is string => !!s))];
    const credential = await this.credentials.get(target.credentialHost);
    const req: HttpRequest = { method: 'GET', url, headers: { accept: 'application/json' } };
    if (credential?.identityToken) {
      // OAuth2 refresh-token grant, as Docker does with identity tokens.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credential.identityToken,
        client_id: 'gcfs',
        ...(service ? { service } : {}),
      });
      for (const s of scopes) form.append('scope', s);
      req.method = 'POST';
      req.headers = { ...req.headers, 'content-type': 'application/x-www-form-urlencoded' };
      req.body = Buffer.from(form.toString());
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const authorization = basic(credential);
      if (authorization) {
        url.searchParams.set('account', credential!.username!);
        req.headers = { ...req.headers, authorization };
      }
    }
    const what = `token for ${target.credentialHost} from ${redactUrl(`${url.origin}${url.pathname}`)}`;
    const res = await this.transport.request(req);
    if (res.status !== 200) throw await responseError(res, what);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse((await readBody(res, Limits.tokenResponseBytes, what)).toString('utf8'));
    } catch (err) {
      if (err instanceof GcfsError) throw err;
      throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: answer is not JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: answer has no token`);
    }
    checkLength(`${what}: token`, token, Limits.credential, {
      code: ErrorCode.RegistryProtocol,
      secret: true,
    });
    registerSecret(token);
    const lifetime =
      typeof body.expires_in === 'number' && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_LIFETIME_SEC;
    // Renew a little early so that a token does not expire between check and use.
    const margin = Math.min(30, lifetime / 10);
    this.tokens.set(tokenKey(target, scope), { token, expiresAt: Date.now() + (lifetime - margin) * 1000 });
    this.events.emit('token', {
      realm: redactUrl(`${url.origin}${url.pathname}`),
      ...(service ? { service } : {}),
      scope: scopes.join(' '),
      expiresInSec: lifetime,
    });
    return token;
  }
}

function tokenKey(target: AuthTarget, scope: string): string {
  return `${target.origin} ${scope}`;
}

function withAuthorization(req: HttpRequest, authorization: string | undefined): HttpRequest {
  if (authorization === undefined) return req;
  return { ...req, headers: { ...req.headers, authorization } };
}
