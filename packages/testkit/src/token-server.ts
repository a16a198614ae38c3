import { createPrivateKey, type KeyObject, randomUUID, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOn } from './http-server.js';
import type { RegistryUser } from './registry-server.js';
import { selfSignedCertificate } from './tls.js';

/**
 * Who may do what, per resource: `{ 'private/app': { pull: ['alice'], push: ['alice'] },
 * '*': { pull: ['*'] } }`. Keys are repository names, or `type:name` for other resource types
 * (`registry:catalog`); `*` in a key matches any characters. The exact key wins, else the longest
 * matching pattern; rules never merge. Principals are usernames, or `*` for anyone including
 * anonymous callers. An action key `*` grants every action.
 */
export type TokenAcl = Record<string, Partial<Record<string, readonly string[]>>>;

export interface ResourceAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequestRecord {
  /** Authenticated username, or undefined for an anonymous caller. */
  user: string | undefined;
  /** HTTP status answered: 200, 400 (bad request) or 401 (bad credentials). */
  status: number;
  requested: ResourceAccess[];
  granted: ResourceAccess[];
}

export interface TokenServerOptions {
  users?: readonly RegistryUser[];
  /** Default: every listed user may do everything, anonymous callers nothing. */
  acl?: TokenAcl;
  /** The `service` the registry announces and the token's audience. */
  service?: string;
  issuer?: string;
  /** JWT lifetime and the `expires_in` answered. Default 300. */
  lifetimeSeconds?: number;
}

/**
 * The token server of distribution's "Token Authentication Specification": GET (and OAuth2 POST
 * password grant) on `/token`, Basic-authenticated callers, ES256 JWTs carrying the signing
 * certificate in `x5c`. The certificate is self-signed and generated per server.
 */
export class TokenServer {
  readonly service: string;
  readonly issuer: string;
  readonly certificatePem: string;
  readonly users: readonly RegistryUser[];
  /** Mutable: tests may change grants, lifetime and clock between requests. */
  acl: TokenAcl;
  lifetimeSeconds: number;
  /**
   * Added to the server's clock for iat/nbf/exp. distribution 2.8 accepts a token for 60 s past
   * its `exp` (and 60 s before its `nbf`), so a 2 s lifetime only makes *clients* refresh after
   * 2 s (from `expires_in`); for the registry to refuse a token, set this below -60 (e.g. -3600):
   * the realm then hands out tokens that are dead on arrival while `expires_in` still says valid.
   */
  clockSkewSeconds = 0;
  /** Every request to the realm, in order. */
  readonly requests: TokenRequestRecord[] = [];
  #url = '';
  readonly #key: KeyObject;
  readonly #x5c: string;
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch((err: unknown) => reply(res, 500, { error: String(err) }));
  });

  private constructor(options: TokenServerOptions, keyPem: string, certificatePem: string) {
    this.users = options.users ?? [];
    this.service = options.service ?? 'gcfs-test-registry';
    this.issuer = options.issuer ?? 'gcfs-testkit-token-server';
    this.lifetimeSeconds = options.lifetimeSeconds ?? 300;
    this.acl = options.acl ?? { '*': { '*': this.users.map((user) => user.username) } };
    this.certificatePem = certificatePem;
    this.#key = createPrivateKey(keyPem);
    this.#x5c = certificatePem.replace(/-----[^-]+-----|\s/g, '');
  }

  static async start(options: TokenServerOptions = {}): Promise<TokenServer> {
    const { keyPem, certificatePem } = await selfSignedCertificate({
      commonName: 'gcfs-testkit-token-server',
    });
    const server = new TokenServer(options, keyPem, certificatePem);
    server.#url = await listenOn(server.#server, '127.0.0.1');
    return server;
  }

  /** `http://127.0.0.1:PORT` */
  get url(): string {
    return this.#url;
  }

  /** The realm the registry announces in WWW-Authenticate. */
  get realm(): string {
    return `${this.#url}/token`;
  }

  /** Token requests answered 200 for `user` (undefined: anonymous callers). */
  issuedTo(user: string | undefined): number {
    return this.requests.filter((r) => r.user === user && r.status === 200).length;
  }

  /** Sign a token for `subject` with exactly `access`, bypassing the ACL (for forged-grant tests). */
  issueToken(subject: string, access: readonly ResourceAccess[], lifetimeSeconds = this.lifetimeSeconds) {
    const now = Math.floor(Date.now() / 1000) + this.clockSkewSeconds;
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.#x5c] };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + lifetimeSeconds,
      nbf: now,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signed), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return `${signed}.${signature.toString('base64url')}`;
  }

  stop(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#url);
    if (url.pathname !== '/token') return reply(res, 404, { error: 'not found' });
    let params: URLSearchParams;
    if (req.method === 'GET') params = url.searchParams;
    else if (req.method === 'POST') params = new URLSearchParams(await readBody(req));
    else return reply(res, 405, { error: 'method not allowed' });

    const requested = params
      .getAll('scope')
      .flatMap((scope) => scope.split(' '))
      .filter(Boolean)
      .map(parseScope);
    const record: TokenRequestRecord = { user: undefined, status: 200, requested, granted: [] };
    this.requests.push(record);

    const caller = this.#authenticate(req, params);
    if (caller === false) {
      record.status = 401;
      res.setHeader('WWW-Authenticate', 'Basic realm="gcfs-testkit-token-server"');
      return reply(res, 401, { error: 'invalid credentials' });
    }
    record.user = caller;
    const service = params.get('service');
    if (service !== this.service || requested.some((scope) => scope.name === '')) {
      record.status = 400;
      return reply(res, 400, {
        error: `bad request: service must be ${this.service}, scopes type:name:actions`,
      });
    }
    record.granted = requested
      .map((scope) => ({ ...scope, actions: scope.actions.filter((a) => this.#allows(caller, scope, a)) }))
      .filter((scope) => scope.actions.length > 0);
    const token = this.issueToken(caller ?? '', record.granted);
    const issuedAt = new Date((Math.floor(Date.now() / 1000) + this.clockSkewSeconds) * 1000);
    reply(res, 200, {
      token,
      access_token: token,
      expires_in: this.lifetimeSeconds,
      issued_at: issuedAt.toISOString(),
    });
  }

  /** The username, undefined when anonymous, false when the credentials are wrong. */
  #authenticate(req: IncomingMessage, params: URLSearchParams): string | undefined | false {
    let username: string | undefined;
    let password: string | undefined;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Basic\s+(\S+)$/i.exec(header);
      if (!match?.[1]) return false;
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return false;
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    } else if (params.get('grant_type') === 'password') {
      username = params.get('username') ?? '';
      password = params.get('password') ?? '';
    } else {
      return undefined;
    }
    const user = this.users.find((u) => u.username === username);
    return user !== undefined && user.password === password ? user.username : false;
  }

  #allows(caller: string | undefined, scope: ResourceAccess, action: string): boolean {
    const rule = this.#ruleFor(scope.type === 'repository' ? scope.name : `${scope.type}:${scope.name}`);
    const principals = [...(rule?.[action] ?? []), ...(rule?.['*'] ?? [])];
    return principals.includes('*') || (caller !== undefined && principals.includes(caller));
  }

  #ruleFor(resource: string) {
    const exact = this.acl[resource];
    if (exact) return exact;
    const best = Object.keys(this.acl)
      .filter((pattern) => globToRegExp(pattern).test(resource))
      .sort((a, b) => b.length - a.length)[0];
    return best === undefined ? undefined : this.acl[best];
  }
}

/** `repository:private/app:pull,push`: the name may itself hold colons (a registry port). */
function parseScope(scope: string): ResourceAccess {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return { type: scope, name: '', actions: [] };
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
