import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { parse as parseToml } from 'smol-toml';
import { registryApiHost } from './reference.js';
import type { TlsOptions } from './transport.js';

// containerd's registry host configuration (docs/hosts.md): <config_path>/<host>/hosts.toml
// lists mirrors (`[host."https://mirror"]`, tried in file order) and the upstream (`server`).

export type Capability = 'pull' | 'resolve' | 'push';
const CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];

/** One place to send distribution API requests for a registry. */
export interface Endpoint {
  /** API root, e.g. `https://mirror.example/v2` (no trailing slash). */
  base: URL;
  /** False for the registry's own upstream (`server`, or the default host). */
  mirror: boolean;
  capabilities: ReadonlySet<Capability>;
  tls?: TlsOptions;
  /** Extra headers sent to this endpoint (`[host."…".header]`). */
  headers: Record<string, string[]>;
}

export interface HostsOptions {
  /** containerd's `config_path` (often /etc/containerd/certs.d); none means defaults only. */
  hostsDir?: string | undefined;
  /** Hosts (`host:port`, or a bare host for any port) reached over plain HTTP by default. */
  insecureHosts?: readonly string[] | undefined;
}

/** Whether `host:port` (or the bare host) is listed in `insecureHosts`. */
export function isInsecureHost(url: URL, insecureHosts: readonly string[] | undefined): boolean {
  return insecureHosts?.some((entry) => entry === url.host || entry === url.hostname) ?? false;
}

function configError(file: string, problem: string, cause?: unknown): never {
  throw new GcfsError(
    ErrorCode.Config,
    `${file}: ${problem}`,
    cause === undefined ? {} : { cause, hint: 'see containerd docs/hosts.md' },
  );
}

function stringList(value: unknown, file: string, what: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  configError(file, `${what} must be a string or a list of strings`);
}

/** The URL of a `[host."…"]` key or `server` value; containerd assumes https without a scheme. */
function hostUrl(server: string, file: string): URL {
  try {
    return new URL(/^https?:\/\//.test(server) ? server : `https://${server}`);
  } catch (err) {
    configError(file, `bad host URL ${JSON.stringify(server)}`, err);
  }
}

/** The endpoint of one `[host."…"]` table or of the top level (`server`). */
function parseEndpoint(
  url: URL,
  table: Record<string, unknown>,
  mirror: boolean,
  file: string,
  baseDir: string,
): Endpoint {
  const base = new URL(url);
  // (?<!\/): only the first of a run of slashes starts a match, so the scan stays linear.
  const path = base.pathname.replace(/(?<!\/)\/+$/, '');
  // Without override_path the API root is <path>/v2, as containerd does.
  base.pathname = table.override_path === true || path.endsWith('/v2') ? path : `${path}/v2`;
  const capabilities = stringList(table.capabilities, file, 'capabilities');
  for (const capability of capabilities) {
    if (!CAPABILITIES.includes(capability as Capability)) {
      configError(file, `unknown capability ${JSON.stringify(capability)}`);
    }
  }
  const headers: Record<string, string[]> = {};
  const headerTable = table.header;
  if (headerTable !== undefined) {
    if (typeof headerTable !== 'object' || headerTable === null) configError(file, 'header must be a table');
    for (const [name, value] of Object.entries(headerTable)) {
      headers[name] = stringList(value, file, `header ${name}`);
    }
  }
  const endpoint: Endpoint = {
    base,
    mirror,
    capabilities: new Set((capabilities.length > 0 ? capabilities : CAPABILITIES) as Capability[]),
    headers,
  };
  const ca = stringList(table.ca, file, 'ca').map((p) => (isAbsolute(p) ? p : join(baseDir, p)));
  if (table.skip_verify === true || ca.length > 0)
    endpoint.tls = { skipVerify: table.skip_verify === true, ca };
  return endpoint;
}

/** The default upstream of a registry when no hosts.toml names one. */
export function defaultEndpoint(registry: string, options: HostsOptions): Endpoint {
  const base = new URL(`https://${registryApiHost(registry)}/v2`);
  if (isInsecureHost(base, options.insecureHosts)) base.protocol = 'http:';
  return { base, mirror: false, capabilities: new Set(CAPABILITIES), headers: {} };
}

/**
 * Parse a hosts.toml: the mirrors in file order, then the upstream (`server`, or the
 * registry's default host when absent).
 */
export function parseHostsToml(
  text: string,
  registry: string,
  file: string,
  options: HostsOptions = {},
): Endpoint[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    configError(file, 'not valid TOML', err);
  }
  const baseDir = dirname(file);
  const endpoints: Endpoint[] = [];
  const hosts = doc.host ?? {};
  if (typeof hosts !== 'object' || hosts === null) configError(file, '`host` must be a table of tables');
  // smol-toml keeps tables in document order, which is the order to try mirrors in.
  for (const [server, table] of Object.entries(hosts)) {
    if (typeof table !== 'object' || table === null) configError(file, `host ${server} must be a table`);
    endpoints.push(
      parseEndpoint(hostUrl(server, file), table as Record<string, unknown>, true, file, baseDir),
    );
  }
  if (doc.server !== undefined && typeof doc.server !== 'string')
    configError(file, 'server must be a string');
  const upstream =
    typeof doc.server === 'string' ? hostUrl(doc.server, file) : defaultEndpoint(registry, options).base;
  endpoints.push(parseEndpoint(upstream, doc, false, file, baseDir));
  return endpoints;
}

/** containerd's directory names for a host: `host_port_` (for `host:port`), then `host`, then `_default`. */
function hostDirectories(hostsDir: string, registry: string): string[] {
  const colon = registry.lastIndexOf(':');
  const dirs = colon > 0 ? [`${registry.slice(0, colon)}_${registry.slice(colon + 1)}_`] : [];
  return [...dirs, registry, '_default'].map((dir) => join(hostsDir, dir, 'hosts.toml'));
}

/** The endpoints to try for a registry, in order: its hosts.toml, or the default upstream. */
export async function loadEndpoints(registry: string, options: HostsOptions): Promise<Endpoint[]> {
  if (options.hostsDir) {
    for (const file of hostDirectories(options.hostsDir, registry)) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        configError(file, 'cannot read', err);
      }
      return parseHostsToml(text, registry, file, options);
    }
  }
  return [defaultEndpoint(registry, options)];
}
