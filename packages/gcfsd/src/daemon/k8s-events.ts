// --event_reporter_type=k8s: Kubernetes Events (core/v1) about image streaming, reason
// ImageStreaming, on the node's object, as an operator sees them with `kubectl get events`.
// The API server is found as in-cluster clients find it (KUBERNETES_SERVICE_HOST/PORT and
// the service account's token and CA); without one, events are logged and not delivered,
// and that is said once at start. The token never reaches a log line.

import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { describeError, type Logger, registerSecret } from '@gcfs/core';
import { Agent, request } from 'undici';

export const IMAGE_STREAMING_REASON = 'ImageStreaming';
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface StreamingEvent {
  type: 'Normal' | 'Warning';
  message: string;
}

export interface ApiServer {
  url: string;
  token: string;
  ca?: string;
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
  const token = (await readFile(`${dir}/token`, 'utf8').catch(() => '')).trim();
  if (token === '') return undefined;
  const ca = await readFile(`${dir}/ca.crt`, 'utf8').catch(() => undefined);
  return { url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, token, ca };
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
  readonly #agent: Agent | undefined;

  constructor(options: { logger: Logger; apiServer?: ApiServer; node?: string }) {
    this.#logger = options.logger;
    this.#node = options.node ?? process.env.NODE_NAME ?? hostname();
    this.#api = options.apiServer;
    if (this.#api === undefined) {
      this.#logger.warn(
        'Kubernetes events are not delivered: no API server is reachable (KUBERNETES_SERVICE_HOST and a service account token are needed); they are logged only',
        { module: 'events' },
      );
      return;
    }
    registerSecret(this.#api.token);
    this.#agent = new Agent({ connect: this.#api.ca === undefined ? {} : { ca: this.#api.ca } });
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
    await this.#agent?.close();
  }

  async #deliver(api: ApiServer, record: ReturnType<typeof kubernetesEvent>): Promise<void> {
    try {
      const response = await request(`${api.url}/api/v1/namespaces/default/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(record),
        dispatcher: this.#agent,
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
