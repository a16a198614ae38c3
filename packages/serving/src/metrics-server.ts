import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a metrics registry offers (prom-client's Registry satisfies it). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  readonly server: Server;
  /** `host:port` as bound (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces) into its parts. */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host: host || undefined, port: Number(listen.slice(colon + 1)) };
}

/**
 * What keeps a process from serving its clients yet, one line each (e.g. "the mount is not
 * up"); none when it is ready.
 */
export type ReadinessCheck = () => Promise<readonly string[]>;

/**
 * Serve `GET /metrics` (Prometheus text), `GET /healthz` (liveness: 200 while `healthy()`,
 * else 503) and `GET /readyz` (readiness: 200 when `ready()` finds nothing missing, else 503
 * with what is; without `ready`, the same as /healthz) on `listen`.
 */
export async function serveMetrics(
  listen: string,
  source: MetricsSource,
  healthy: () => boolean = () => true,
  ready?: ReadinessCheck,
): Promise<MetricsServer> {
  const readiness: ReadinessCheck = ready ?? (async () => (healthy() ? [] : ['stopping']));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      source.metrics().then(
        (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
      );
    } else if (req.method === 'GET' && path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'stopping\n');
    } else if (req.method === 'GET' && path === '/readyz') {
      readiness().then(
        (missing) =>
          missing.length === 0
            ? res.writeHead(200).end('ok\n')
            : res.writeHead(503).end(`not ready: ${missing.join('; ')}\n`),
        (err: unknown) => res.writeHead(503).end(`not ready: ${String(err)}\n`),
      );
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    server,
    port: bound.port,
    address: bound.address.includes(':')
      ? `[${bound.address}]:${bound.port}`
      : `${bound.address}:${bound.port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
