// gcfsd's admin endpoint: HTTP/JSON on a root-only Unix socket, for tools and tests
// (`curl --unix-socket /run/gcfsd/admin.sock http://gcfsd/v1/images`). The snapshotter
// calls the Registrar in-process; this exposes the same calls outside the process.
//
//   GET    /v1/images          images in use
//   POST   /v1/images          {"image": "<ref>", "credential"?: {username, password}}: register
//   DELETE /v1/images/<name>   mark unused (URL-encoded name); GC removes it
//   POST   /v1/gc              run a GC pass now

import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { describeError, ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import type { GcResult } from './gc.js';
import type { PullCredential } from './layer-downloads.js';
import type { RegisteredImage } from './registrar.js';

/** Next to the mount point, as GKE's gcfsd keeps its keychain socket (/run/gcfsd/keychain.sock). */
export function adminSocketPath(mountPoint: string): string {
  return join(dirname(mountPoint), 'admin.sock');
}

/** The calls the endpoint serves (the daemon's Registrar and GarbageCollector). */
export interface AdminApi {
  register(image: string, options: { credential?: PullCredential }): Promise<RegisteredImage>;
  unregister(name: string): Promise<boolean>;
  list(): RegisteredImage[];
  collect(): Promise<GcResult>;
}

const MAX_BODY = 1 << 20;

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.InvalidReference]: 400,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Denied]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.NotStreamable]: 409,
  [ErrorCode.BackendUnavailable]: 503,
};

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new GcfsError(ErrorCode.InvalidArgument, 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new GcfsError(ErrorCode.InvalidArgument, 'request body is not JSON');
  }
}

async function route(api: AdminApi, req: IncomingMessage): Promise<unknown> {
  const path = (req.url ?? '/').split('?')[0]!;
  if (path === '/v1/images' && req.method === 'GET') return { images: api.list() };
  if (path === '/v1/images' && req.method === 'POST') {
    const body = (await readJson(req)) as { image?: unknown; credential?: PullCredential };
    if (typeof body.image !== 'string') throw new GcfsError(ErrorCode.InvalidArgument, 'no "image" string');
    return api.register(body.image, body.credential === undefined ? {} : { credential: body.credential });
  }
  if (path.startsWith('/v1/images/') && req.method === 'DELETE') {
    const name = decodeURIComponent(path.slice('/v1/images/'.length));
    if (!(await api.unregister(name))) throw new GcfsError(ErrorCode.NotFound, `image ${name} is not in use`);
    return { name, inUse: false };
  }
  if (path === '/v1/gc' && req.method === 'POST') return api.collect();
  throw new GcfsError(ErrorCode.NotFound, `no ${req.method} ${path}`);
}

export async function serveAdmin(api: AdminApi, socketPath: string): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    route(api, req).then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (err: unknown) => {
        const code = isGcfsError(err) ? err.code : ErrorCode.Internal;
        res
          .writeHead(STATUS_OF[code] ?? 500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ code, message: describeError(err) }));
      },
    );
  });
  // A socket left by a crashed gcfsd would make listen fail with EADDRINUSE.
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o600);
  return server;
}

/** A client of the admin endpoint, for tools and tests. */
export class AdminClient {
  readonly #socketPath: string;

  constructor(socketPath: string) {
    this.#socketPath = socketPath;
  }

  register(image: string, credential?: PullCredential): Promise<RegisteredImage> {
    return this.#call('POST', '/v1/images', { image, credential });
  }
  async list(): Promise<RegisteredImage[]> {
    return (await this.#call<{ images: RegisteredImage[] }>('GET', '/v1/images')).images;
  }
  async unregister(name: string): Promise<void> {
    await this.#call('DELETE', `/v1/images/${encodeURIComponent(name)}`);
  }
  collect(): Promise<GcResult> {
    return this.#call('POST', '/v1/gc');
  }

  #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.#socketPath, method, path, headers: { host: 'gcfsd' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as T & {
              code?: ErrorCode;
              message?: string;
            };
            if (res.statusCode === 200) resolve(parsed);
            else
              reject(
                new GcfsError(
                  parsed?.code ?? ErrorCode.Internal,
                  `gcfsd: ${parsed?.message ?? res.statusCode}`,
                ),
              );
          });
        },
      );
      req.on('error', (err) =>
        reject(
          new GcfsError(ErrorCode.Internal, `cannot reach gcfsd on ${this.#socketPath}`, { cause: err }),
        ),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
