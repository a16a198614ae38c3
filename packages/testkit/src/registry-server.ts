import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestHex, parseDigest } from '@gcfs/core';
import { curl } from './curl.js';
import { freePort, type ManagedProcess, startProcess } from './process.js';
import { makeTempDir } from './temp.js';
import { type TokenAcl, TokenServer } from './token-server.js';

const REGISTRY_BINARY = '/usr/bin/docker-registry';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryUser {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Default 'none'. */
  auth?: RegistryAuth;
  /** Accounts for htpasswd and token auth. */
  users?: readonly RegistryUser[];
  /** Token auth only: the token server's ACL (default: users may do everything, anonymous nothing). */
  acl?: TokenAcl;
  /** Token auth only: lifetime of issued tokens. Default 300 s. */
  tokenLifetimeSeconds?: number;
  readyTimeoutMs?: number;
  /** Address to listen on (default 127.0.0.1), e.g. a ShapedNetwork's nsAddress. */
  listenHost?: string;
  /** Run the registry through this, e.g. a ShapedNetwork's wrap (inside its namespace). */
  wrap?: (command: string, args: readonly string[]) => { command: string; args: string[] };
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` (or listenHost), the registry host as it appears in image references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` (or listenHost) */
  readonly url: string;
  readonly auth: RegistryAuth;
  readonly users: readonly RegistryUser[];
  /** Root of the filesystem storage driver. */
  readonly storageDir: string;
  readonly logFile: string;
  /** Where the registry keeps a blob's bytes, to read or tamper with them. */
  blobDataPath(digest: string): string;
  /** Everything the registry wrote to stdout/stderr since it was first started. */
  logs(): Promise<string>;
  /**
   * Stop (SIGTERM, then SIGKILL) and start again on the same port with the same storage. The
   * registry does not drain on SIGTERM: open connections break at once, but bytes already in
   * loopback socket buffers (a few MiB) still reach the reader, so a mid-read restart needs a
   * blob well beyond that, read slowly.
   */
  restart(): Promise<void>;
  /** Stop the registry (and its token server) and remove its temp dir. Idempotent. */
  stop(): Promise<void>;
  /** The token server when auth is 'token'. */
  readonly tokenServer: TokenServer | undefined;
}

/**
 * Debian's docker-registry (distribution 2.8) on a random 127.0.0.1 port, plain HTTP, with its
 * storage, config and log in a fresh temp dir.
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? [];
  const dir = await makeTempDir('gcfs-registry-');
  let tokenServer: TokenServer | undefined;
  try {
    const storageDir = join(dir.path, 'storage');
    const configFile = join(dir.path, 'config.yml');
    const logFile = join(dir.path, 'registry.log');
    await mkdir(storageDir);
    if (auth === 'token') {
      tokenServer = await TokenServer.start({
        users,
        ...(options.acl && { acl: options.acl }),
        ...(options.tokenLifetimeSeconds !== undefined && { lifetimeSeconds: options.tokenLifetimeSeconds }),
      });
    }
    // In a fresh namespace every port is free: one free on the host will do. The token server
    // listens first, so the port picked here can't be the one it was given a moment later.
    const port = await freePort(options.wrap ? undefined : options.listenHost);
    const host = `${options.listenHost ?? '127.0.0.1'}:${port}`;
    const url = `http://${host}`;
    const authSection = await authConfig(auth, users, dir.path, tokenServer);
    await writeFile(configFile, JSON.stringify(registryConfig(host, storageDir, authSection), null, 2));

    const command = options.wrap?.(REGISTRY_BINARY, ['serve', configFile]) ?? {
      command: REGISTRY_BINARY,
      args: ['serve', configFile],
    };
    const launch = () =>
      startProcess({
        name: `docker-registry ${host}`,
        command: command.command,
        args: command.args,
        // A clean environment: REGISTRY_* variables would override the config.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir.path },
        logFile,
        ready: { check: () => answers(`${url}/v2/`) },
        readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
      });
    let proc: ManagedProcess | undefined = await launch();
    let stopped = false;

    return {
      host,
      url,
      auth,
      users,
      storageDir,
      logFile,
      tokenServer,
      blobDataPath: (digest) => blobDataPath(storageDir, digest),
      logs: () => readFile(logFile, 'utf8'),
      async restart() {
        if (stopped) throw new Error('registry already stopped');
        await proc?.stop();
        proc = undefined;
        proc = await launch();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await proc?.stop();
        await tokenServer?.stop();
        await dir.cleanup();
      },
    };
  } catch (err) {
    await tokenServer?.stop();
    await dir.cleanup();
    throw err;
  }
}

/** Path of a blob's bytes in the filesystem driver's layout. */
export function blobDataPath(storageDir: string, digest: string): string {
  const hex = digestHex(parseDigest(digest));
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return join(storageDir, 'docker/registry/v2/blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

function registryConfig(host: string, storageDir: string, auth: object | undefined): object {
  // JSON is valid YAML, and the registry's config loader is a YAML parser.
  return {
    version: '0.1',
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      // No background purge of upload dirs racing the test's own cleanup.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: host,
      secret: randomBytes(16).toString('hex'),
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
    ...(auth === undefined ? {} : { auth }),
  };
}

async function authConfig(
  auth: RegistryAuth,
  users: readonly RegistryUser[],
  dir: string,
  tokenServer: TokenServer | undefined,
): Promise<object | undefined> {
  switch (auth) {
    case 'none':
      return undefined;
    case 'htpasswd': {
      const path = join(dir, 'htpasswd');
      await writeFile(path, await htpasswdFile(users));
      return { htpasswd: { realm: 'gcfs-test', path } };
    }
    case 'token': {
      if (!tokenServer) throw new Error('token auth needs a token server');
      const rootcertbundle = join(dir, 'token-ca.pem');
      await writeFile(rootcertbundle, tokenServer.certificatePem);
      const { realm, service, issuer } = tokenServer;
      return { token: { realm, service, issuer, rootcertbundle } };
    }
  }
}

const execFileAsync = promisify(execFile);

/** bcrypt entries made by apache2-utils' htpasswd, the format the registry accepts. */
async function htpasswdFile(users: readonly RegistryUser[]): Promise<string> {
  const lines = await Promise.all(
    users.map(async ({ username, password }) => {
      const { stdout } = await execFileAsync('htpasswd', ['-Bbn', username, password]);
      return stdout.trim();
    }),
  );
  return `${lines.join('\n')}\n`;
}

/** Whether an HTTP server answers at `url`, with any status. */
/** The registry itself answers (another process that took the port would not say this header). */
async function answers(url: string): Promise<boolean> {
  try {
    const { headers } = await curl([url], { timeoutMs: 2000 });
    return headers['docker-distribution-api-version'] === 'registry/2.0';
  } catch {
    return false;
  }
}
