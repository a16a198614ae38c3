// Where gcfsd's Kubernetes events go and with which identity (k8s-events.ts posts them): a
// kubeconfig, the format kubectl and the kubelet read, reduced to what posting needs. Its
// current context's cluster gives the server, its CA (file or inline data), the TLS server
// name and insecure-skip-tls-verify; its user a token or tokenFile, or a client certificate
// and key (files or inline data; the kubelet's own is one file holding both). Relative paths
// are relative to the kubeconfig's directory, as client-go reads them. Exec and auth-provider
// plugins are refused: gcfsd runs no credential helper.

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import { parse, YAMLError } from 'yaml';

/** The API server and how to authenticate to it. */
export interface ApiServer {
  /** `https://host:port[/prefix]`, without a trailing slash. */
  url: string;
  /** PEM of the CAs to trust; absent: Node's bundled roots. */
  ca?: string;
  /** The name to check the server's certificate against, when it is not the URL's host. */
  servername?: string;
  insecureSkipTlsVerify?: boolean;
  /** Read at each request: tokens and certificates rotate (projected tokens, kubelet's cert). */
  credentials(): Promise<ApiCredentials>;
  /** Where it came from, for the start-up log line. */
  source: string;
}

/** Every secret in it is registered for redaction when it is read. */
export interface ApiCredentials {
  token?: string;
  /** PEM certificate chain and private key of a client certificate. */
  cert?: string;
  key?: string;
}

/** The kubelet's kubeconfig (kubeadm's path, then the kubelet's own default), the first found. */
export const KUBELET_KUBECONFIGS = ['/etc/kubernetes/kubelet.conf', '/var/lib/kubelet/kubeconfig'];

/**
 * The PEM blocks of `text` whose label `accept` takes, e.g. every CERTIFICATE. Read line by
 * line (a regular expression over the whole file would be super-linear on hostile input).
 */
function pemBlocks(text: string, accept: (label: string) => boolean): string {
  let out = '';
  let block: { label: string; lines: string[] } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (block === undefined) {
      if (line.startsWith('-----BEGIN ') && line.endsWith('-----')) {
        block = { label: line.slice('-----BEGIN '.length, -'-----'.length), lines: [line] };
      }
      continue;
    }
    block.lines.push(line);
    if (line === `-----END ${block.label}-----`) {
      if (accept(block.label)) out += `${block.lines.join('\n')}\n`;
      block = undefined;
    }
  }
  return out;
}

function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/**
 * The node a client certificate (credentials().cert: its CERTIFICATE blocks, the first one
 * parsed) is the kubelet of (`CN=system:node:<name>`), if it is one.
 */
export function kubeletNodeName(certPem: string | undefined): string | undefined {
  const subject = certPem ? parseCertificate(certPem)?.subject : undefined;
  return subject === undefined ? undefined : /^CN=system:node:(.+)$/m.exec(subject)?.[1];
}

type Fields = Record<string, unknown>;

/** Load the current context of the kubeconfig at `path`; a GcfsError (ERR_CONFIG) says why not. */
export async function loadKubeconfig(path: string): Promise<ApiServer> {
  const fail = (problem: string, cause?: unknown): never => {
    throw new GcfsError(ErrorCode.Config, `kubeconfig ${path}: ${problem}`, {
      ...(cause === undefined ? {} : { cause }),
      hint: 'give --kubeconfig a kubeconfig with a server and a token, tokenFile or client certificate (docs/operations.md)',
    });
  };
  const yaml = await readFile(path, 'utf8').catch((err: unknown) => fail('cannot be read', err));
  let doc: unknown;
  try {
    doc = parse(yaml);
  } catch (err) {
    // Not its message: it quotes the line, which may hold a token.
    const at = err instanceof YAMLError ? err.linePos?.[0] : undefined;
    return fail(`is not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ''}`);
  }
  if (typeof doc !== 'object' || doc === null) return fail('is not a kubeconfig (no mapping at its top)');
  const config = doc as Fields;
  const named = (list: string, name: unknown, field: string): Fields => {
    const entry = (Array.isArray(config[list]) ? (config[list] as Fields[]) : []).find(
      (e) => e?.name === name,
    );
    const value = entry?.[field];
    if (typeof value !== 'object' || value === null)
      return fail(`${list} has no entry named ${JSON.stringify(name)}`);
    return value as Fields;
  };
  const current = config['current-context'];
  if (typeof current !== 'string' || current === '') return fail('has no current-context');
  const context = named('contexts', current, 'context');
  const cluster = named('clusters', context.cluster, 'cluster');
  const user = named('users', context.user, 'user');

  const base = dirname(resolve(path));
  const text = (fields: Fields, key: string): string | undefined => {
    const value = fields[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') return fail(`${key} is not a string`);
    return value;
  };
  // An inline `<name>-data` (base64) or the file `<name>` names, read when asked.
  const source = (fields: Fields, name: string): (() => Promise<string>) | undefined => {
    const data = text(fields, `${name}-data`);
    if (data !== undefined) {
      const decoded = Buffer.from(data, 'base64').toString('utf8');
      return async () => decoded;
    }
    const file = text(fields, name);
    if (file === undefined) return undefined;
    const full = resolve(base, file);
    return () => readFile(full, 'utf8').catch((err: unknown) => fail(`cannot read ${name} ${full}`, err));
  };

  for (const plugin of ['exec', 'auth-provider']) {
    if (user[plugin] !== undefined) {
      const command = (user[plugin] as Fields | null)?.command ?? (user[plugin] as Fields | null)?.name;
      fail(
        `user ${JSON.stringify(context.user)} gets its credentials from an ${plugin} plugin` +
          `${typeof command === 'string' ? ` (${command})` : ''}, which gcfsd does not run: use a ServiceAccount token kubeconfig`,
      );
    }
  }
  if (user.username !== undefined || user.password !== undefined)
    fail('basic authentication (username/password) is not supported by Kubernetes any more');

  const server = text(cluster, 'server');
  if (server === undefined) return fail(`cluster ${JSON.stringify(context.cluster)} has no server`);
  if (!URL.canParse(server) || new URL(server).protocol !== 'https:')
    fail(`server ${JSON.stringify(server)} is not an https URL`);

  const inlineToken = text(user, 'token');
  const tokenFile = source(user, 'tokenFile');
  const cert = source(user, 'client-certificate');
  const key = source(user, 'client-key');
  if ((cert === undefined) !== (key === undefined)) fail('client-certificate and client-key go together');
  if (inlineToken === undefined && tokenFile === undefined && cert === undefined)
    fail(`user ${JSON.stringify(context.user)} has no token, tokenFile or client-certificate`);

  const credentials = async (): Promise<ApiCredentials> => {
    const found: ApiCredentials = {};
    const token = inlineToken ?? (await tokenFile?.())?.trim();
    if (token) found.token = token;
    if (cert && key) {
      // The kubelet keeps both in one file (kubelet-client-current.pem): pick the blocks.
      found.cert = pemBlocks(await cert(), (label) => label === 'CERTIFICATE');
      found.key = pemBlocks(await key(), (label) => label.endsWith('PRIVATE KEY'));
      if (!found.cert || !found.key) fail('client-certificate or client-key holds no PEM certificate or key');
      if (parseCertificate(found.cert) === undefined) fail('client-certificate is not a valid certificate');
    }
    registerSecret(found.token);
    registerSecret(found.key);
    return found;
  };
  // Refuse now what would fail at every event: unreadable files, empty PEM.
  await credentials();
  const ca = await source(cluster, 'certificate-authority')?.();
  const servername = text(cluster, 'tls-server-name');
  return {
    // A path is kept: some servers sit behind a proxy prefix (https://host/k8s/clusters/c1).
    url: withoutTrailingSlashes(server),
    ...(ca === undefined ? {} : { ca }),
    ...(servername === undefined ? {} : { servername }),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    credentials,
    source: `kubeconfig ${path}`,
  };
}

function withoutTrailingSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url[end - 1] === '/') end--;
  return url.slice(0, end);
}
