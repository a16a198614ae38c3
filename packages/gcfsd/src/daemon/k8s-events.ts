// --event_reporter_type=k8s: Kubernetes Events (core/v1) about image streaming, reason
// ImageStreaming, on the node's object, as an operator sees them with `kubectl get events`.
// The API server and identity come from --kubeconfig, else the in-cluster service account
// (KUBERNETES_SERVICE_HOST/PORT and its token and CA, as in a DaemonSet), else the kubelet's
// kubeconfig (gcfsd run by systemd on a node). Without any, events are logged and not
// delivered, and that is said once at start. No token or key reaches a log line.

import { access, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { describeError, type Logger, registerSecret } from '@gcfs/core';
import { Agent, request } from 'undici';
import {
  type ApiCredentials,
  type ApiServer,
  KUBELET_KUBECONFIGS,
  kubeletNodeName,
  loadKubeconfig,
} from './kubeconfig.js';

export const IMAGE_STREAMING_REASON = 'ImageStreaming';
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface StreamingEvent {
  type: 'Normal' | 'Warning';
  message: string;
}

export interface EventReporter {
  report(event: StreamingEvent): void;
}

/** The in-cluster API server from the environment, or undefined when there is none. */
export async function inClusterApiServer(
  env: NodeJS.ProcessEnv = process.env,
  dir = SERVICE_ACCOUNT_DIR,
): Promise<ApiServer | undefined> {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  const readToken = async () => (await readFile(`${dir}/token`, 'utf8').catch(() => '')).trim();
  if ((await readToken()) === '') return undefined;
  const ca = await readFile(`${dir}/ca.crt`, 'utf8').catch(() => undefined);
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(ca === undefined ? {} : { ca }),
    // Projected service account tokens are renewed in place: read at each request.
    credentials: async () => {
      const token = await readToken();
      registerSecret(token);
      return token === '' ? {} : { token };
    },
    source: 'in-cluster service account',
  };
}

export interface ApiServerChoice {
  api?: ApiServer;
  /** Without `api`: why events are not delivered. */
  undelivered?: string;
}

/**
 * Where events go: --kubeconfig (a bad one fails the start), else the in-cluster service
 * account, else the first kubelet kubeconfig that exists (a bad one is only said once).
 */
export async function chooseApiServer(
  kubeconfig: string,
  o: { env?: NodeJS.ProcessEnv; serviceAccountDir?: string; kubeletKubeconfigs?: readonly string[] } = {},
): Promise<ApiServerChoice> {
  if (kubeconfig !== '') return { api: await loadKubeconfig(kubeconfig) };
  const inCluster = await inClusterApiServer(o.env, o.serviceAccountDir);
  if (inCluster !== undefined) return { api: inCluster };
  for (const path of o.kubeletKubeconfigs ?? KUBELET_KUBECONFIGS) {
    if (
      !(await access(path).then(
        () => true,
        () => false,
      ))
    )
      continue;
    try {
      return { api: await loadKubeconfig(path) };
    } catch (err) {
      return { undelivered: `the kubelet's ${describeError(err)}` };
    }
  }
  return {
    undelivered: `no API server is known: no --kubeconfig, no in-cluster service account (KUBERNETES_SERVICE_HOST and a token), no kubelet kubeconfig (${(o.kubeletKubeconfigs ?? KUBELET_KUBECONFIGS).join(', ')})`,
  };
}

/**
 * The node the events are about: NODE_NAME, else the node of the kubelet's client certificate
 * (`system:node:<name>`), else the host name in lower case, the kubelet's default node name.
 */
export async function eventNodeName(api: ApiServer | undefined, env: NodeJS.ProcessEnv = process.env) {
  if (env.NODE_NAME) return env.NODE_NAME;
  const fromCert = api === undefined ? undefined : kubeletNodeName((await api.credentials()).cert);
  return fromCert ?? hostname().trim().toLowerCase();
}

/** The core/v1 Event object for `event` on node `node`. */
export function kubernetesEvent(event: StreamingEvent, node: string, now = new Date()) {
  const time = now.toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${node}.`, namespace: 'default' },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: node, uid: node },
    reason: IMAGE_STREAMING_REASON,
    message: event.message,
    type: event.type,
    source: { component: 'gcfsd', host: node },
    reportingComponent: 'gcfsd',
    reportingInstance: node,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}

export class KubernetesEventReporter implements EventReporter {
  readonly #logger: Logger;
  readonly #node: string;
  readonly #api: ApiServer | undefined;
  /** The connection pool and the client certificate it presents (renewed when the file is). */
  #agent: { agent: Agent; identity: string } | undefined;

  constructor(options: { logger: Logger; node: string; apiServer?: ApiServer; undelivered?: string }) {
    this.#logger = options.logger;
    this.#node = options.node;
    this.#api = options.apiServer;
    if (this.#api === undefined) {
      this.#logger.warn(
        `Kubernetes events are not delivered: ${options.undelivered ?? 'no API server is known'}; they are logged only`,
        { module: 'events' },
      );
      return;
    }
    this.#logger.info('Kubernetes events are posted to the API server', {
      module: 'events',
      server: this.#api.url,
      from: this.#api.source,
      node: this.#node,
    });
  }

  report(event: StreamingEvent): void {
    const record = kubernetesEvent(event, this.#node);
    this.#logger.info(`Event ${record.type} ${record.reason}: ${record.message}`, {
      module: 'events',
      delivered: this.#api !== undefined,
    });
    if (this.#api !== undefined) void this.#deliver(this.#api, record);
  }

  async close(): Promise<void> {
    await this.#agent?.agent.close();
    this.#agent = undefined;
  }

  #agentFor(api: ApiServer, credentials: ApiCredentials): Agent {
    const identity = `${credentials.cert ?? ''}${credentials.key ?? ''}`;
    if (this.#agent?.identity === identity) return this.#agent.agent;
    void this.#agent?.agent.close();
    const agent = new Agent({
      connect: {
        ...(api.ca === undefined ? {} : { ca: api.ca }),
        ...(api.servername === undefined ? {} : { servername: api.servername }),
        ...(api.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
        ...(credentials.cert === undefined ? {} : { cert: credentials.cert, key: credentials.key }),
      },
    });
    this.#agent = { agent, identity };
    return agent;
  }

  async #deliver(api: ApiServer, record: ReturnType<typeof kubernetesEvent>): Promise<void> {
    try {
      const credentials = await api.credentials();
      const response = await request(`${api.url}/api/v1/namespaces/default/events`, {
        method: 'POST',
        headers: {
          ...(credentials.token === undefined ? {} : { authorization: `Bearer ${credentials.token}` }),
          'content-type': 'application/json',
        },
        body: JSON.stringify(record),
        dispatcher: this.#agentFor(api, credentials),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const text = await response.body.text();
      if (response.statusCode >= 300) {
        this.#logger.warn('The API server refused an event', {
          module: 'events',
          status: response.statusCode,
          body: text.slice(0, 200),
        });
      }
    } catch (err) {
      this.#logger.warn('Could not deliver an event to the API server', {
        module: 'events',
        error: describeError(err),
      });
    }
  }
}
