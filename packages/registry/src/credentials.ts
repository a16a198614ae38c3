import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import { DOCKER_HUB, normalizeRegistry } from './reference.js';

/** What to authenticate with: a user and password, or an OAuth2 identity (refresh) token. */
export interface Credential {
  username?: string;
  password?: string;
  identityToken?: string;
}

/** Where the client gets credentials for a host (`host[:port]`, docker.io for Docker Hub). */
export interface CredentialSource {
  get(host: string): Promise<Credential | undefined>;
}

/** The parts of Docker's config.json that hold credentials. */
export interface DockerConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string } | undefined
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface CredentialStoreOptions {
  config?: DockerConfig;
  /** Credentials given explicitly per host; they win over the config file. */
  explicit?: Record<string, Credential>;
  /** Environment of credential helpers (PATH decides which helper runs). */
  env?: NodeJS.ProcessEnv;
}

// Docker stores Docker Hub under its v1 URL, and helpers expect that server URL.
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const HELPER_TIMEOUT_MS = 30_000;
const HELPER_CACHE_MS = 5 * 60_000;

/** `https://host:port/v1/` or `host:port` → the registry name used for lookups. */
function hostKey(entry: string): string {
  const withoutScheme = entry.replace(/^[a-z]+:\/\//i, '');
  return normalizeRegistry(withoutScheme.split('/')[0] ?? withoutScheme);
}

function registered(credential: Credential): Credential {
  registerSecret(credential.password);
  registerSecret(credential.identityToken);
  return credential;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/**
 * Credentials from explicit values and a Docker config.json: `credHelpers` for the host,
 * then `auths`, then the default `credsStore`, each helper run with the
 * docker-credential-* protocol. Every secret is registered for redaction.
 */
export class CredentialStore implements CredentialSource {
  private readonly explicit = new Map<string, Credential>();
  private readonly config: DockerConfig;
  private readonly env: NodeJS.ProcessEnv;
  private readonly helperCache = new Map<string, { at: number; value: Promise<Credential | undefined> }>();

  constructor(options: CredentialStoreOptions = {}) {
    this.config = options.config ?? {};
    this.env = options.env ?? process.env;
    for (const [host, credential] of Object.entries(options.explicit ?? {})) {
      this.explicit.set(hostKey(host), registered({ ...credential }));
    }
    for (const entry of Object.values(this.config.auths ?? {})) {
      registerSecret(entry?.auth);
      registerSecret(entry?.password);
      registerSecret(entry?.identitytoken);
    }
  }

  /** Load a Docker config.json; a missing file means no credentials from it. */
  static async fromDockerConfig(
    path: string = defaultDockerConfigPath(),
    options: Omit<CredentialStoreOptions, 'config'> = {},
  ): Promise<CredentialStore> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new CredentialStore(options);
      throw new GcfsError(ErrorCode.Config, `cannot read Docker config ${path}`, { cause: err });
    }
    let config: DockerConfig;
    try {
      config = JSON.parse(text) as DockerConfig;
    } catch {
      // The parser's message quotes the input, which holds secrets: leave it out.
      throw new GcfsError(ErrorCode.Config, `Docker config ${path} is not valid JSON`);
    }
    return new CredentialStore({ ...options, config });
  }

  async get(host: string): Promise<Credential | undefined> {
    const key = hostKey(host);
    const explicit = this.explicit.get(key);
    if (explicit) return explicit;
    const helper = Object.entries(this.config.credHelpers ?? {}).find(([h]) => hostKey(h) === key)?.[1];
    if (helper) return this.fromHelper(helper, key);
    const fromAuths = this.fromAuths(key);
    if (fromAuths) return fromAuths;
    if (this.config.credsStore) return this.fromHelper(this.config.credsStore, key);
    return undefined;
  }

  private fromAuths(key: string): Credential | undefined {
    const entry = Object.entries(this.config.auths ?? {}).find(([h]) => hostKey(h) === key)?.[1];
    if (!entry) return undefined;
    const credential: Credential = {};
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) {
        throw new GcfsError(
          ErrorCode.Config,
          `Docker config: auth for ${key} is not base64 of user:password`,
        );
      }
      credential.username = decoded.slice(0, colon);
      credential.password = decoded.slice(colon + 1);
    }
    if (entry.username) credential.username = entry.username;
    if (entry.password) credential.password = entry.password;
    if (entry.identitytoken) credential.identityToken = entry.identitytoken;
    // `docker login` with a credsStore leaves empty entries: the secret is in the store.
    return credential.password || credential.identityToken ? registered(credential) : undefined;
  }

  private fromHelper(name: string, key: string): Promise<Credential | undefined> {
    const cacheKey = `${name}\n${key}`;
    const cached = this.helperCache.get(cacheKey);
    if (cached && Date.now() - cached.at < HELPER_CACHE_MS) return cached.value;
    const value = runHelper(name, key === DOCKER_HUB ? DOCKER_HUB_SERVER : key, this.env);
    this.helperCache.set(cacheKey, { at: Date.now(), value });
    value.catch(() => this.helperCache.delete(cacheKey));
    return value;
  }
}

/** Run `docker-credential-<name> get` with the server on stdin; "not found" means anonymous. */
function runHelper(name: string, server: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const fail = (problem: string, cause?: unknown) =>
    new GcfsError(ErrorCode.CredentialHelper, `credential helper ${program} for ${server}: ${problem}`, {
      hint: `install ${program} on PATH, or remove it from credHelpers/credsStore in the Docker config`,
      ...(cause === undefined ? {} : { cause }),
    });
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Not spawn's own `timeout`: its timer outlives a child that failed to start.
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(fail((err as NodeJS.ErrnoException).code ?? 'cannot run', err));
    });
    child.stdin.on('error', () => {
      // the helper may exit without reading stdin; its exit status tells what happened
    });
    child.stdin.end(server);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(stdout).toString('utf8').trim();
      if (code !== 0) {
        if (/credentials not found/i.test(out)) {
          resolve(undefined);
          return;
        }
        const message = (Buffer.concat(stderr).toString('utf8').trim() || out).slice(0, 300);
        reject(fail(`exited with ${signal ?? `status ${code}`}${message ? `: ${message}` : ''}`));
        return;
      }
      try {
        const parsed = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
        if (typeof parsed.Secret !== 'string') throw new Error('no Secret in the answer');
        registerSecret(parsed.Secret);
        // By the helper protocol, a user of "<token>" marks an identity token.
        resolve(
          parsed.Username === '<token>'
            ? { identityToken: parsed.Secret }
            : { username: String(parsed.Username ?? ''), password: parsed.Secret },
        );
      } catch {
        // No cause: the parser's message would quote the secret.
        reject(fail('answered something other than {"Username","Secret"} JSON'));
      }
    });
  });
}
