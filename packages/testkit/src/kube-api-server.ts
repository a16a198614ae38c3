// A stand-in for kube-apiserver's events endpoint (Debian ships no kube-apiserver): HTTPS
// with its own certificate, authenticating as the real one does a bearer token it knows or a
// client certificate signed by the CA it trusts (the user is the certificate's CN, as for
// the kubelet's `system:node:<name>`), answering 401 to anyone else, and recording every
// Event created with `POST /api/v1/namespaces/<ns>/events`.

import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { closeServer, listenOn } from './http-server.js';
import { selfSignedCertificate } from './tls.js';

export interface PostedEvent {
  /** Who posted it: the token's user, or the client certificate's CN. */
  user: string;
  namespace: string;
  event: Record<string, unknown>;
}

export interface KubeApiStandIn {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** PEM of the server's certificate, the CA a client trusts. */
  readonly ca: string;
  readonly events: PostedEvent[];
  /** Requests refused, as `<status> <reason>`. */
  readonly refused: string[];
  close(): Promise<void>;
}

export interface KubeApiStandInOptions {
  /** Bearer tokens it accepts, and the user each authenticates. */
  tokens?: Record<string, string>;
  /** PEM of the CA whose client certificates it accepts. */
  clientCa?: string;
}

export async function startKubeApiStandIn(o: KubeApiStandInOptions = {}): Promise<KubeApiStandIn> {
  const { keyPem, certificatePem } = await selfSignedCertificate({
    commonName: 'kube-apiserver',
    altNames: ['IP:127.0.0.1', 'DNS:kubernetes.default'],
  });
  const events: PostedEvent[] = [];
  const refused: string[] = [];
  const server: Server = createServer(
    {
      key: keyPem,
      cert: certificatePem,
      requestCert: o.clientCa !== undefined,
      rejectUnauthorized: false,
      ...(o.clientCa === undefined ? {} : { ca: o.clientCa }),
    },
    (req, res) => {
      const answer = (status: number, reason: string, body: object = { kind: 'Status', reason }) => {
        if (status >= 300) refused.push(`${status} ${reason}`);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const socket = req.socket as TLSSocket;
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const cn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
      const user =
        (bearer !== undefined ? o.tokens?.[bearer] : undefined) ?? (Array.isArray(cn) ? cn[0] : cn);
      const path = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(req.url ?? '');
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        if (user === undefined) return answer(401, 'Unauthorized');
        if (req.method !== 'POST' || path === null) return answer(404, 'NotFound');
        const event = JSON.parse(body) as Record<string, unknown>;
        events.push({ user, namespace: path[1]!, event });
        answer(201, 'Created', event);
      });
    },
  );
  const url = (await listenOn(server, '127.0.0.1')).replace(/^http:/, 'https:');
  return {
    url,
    ca: certificatePem,
    events,
    refused,
    close: () => closeServer(server),
  };
}
