import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { closeServer, listenOn } from './http-server.js';
import type { RunningRegistry } from './registry-server.js';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/([a-z0-9]+:[0-9a-f]+)$/;

/**
 * A registry front on 127.0.0.2 that answers every /v2/ request with a 307 to the real registry
 * (127.0.0.1), except blob GET/HEAD requests, which it sends to a "blob host" on 127.0.0.3 serving
 * the bytes straight from the registry's storage, the way registries hand blobs to a CDN or S3.
 * Both record the requests they saw, so a test can check that credentials sent to the front did
 * not follow a redirect to another host. Requests redirected to the registry arrive there
 * without the front's credentials too, so use an open registry behind the front.
 */
export class RedirectFront {
  /** Requests seen by the front (127.0.0.2) and by the blob host (127.0.0.3), in order. */
  readonly frontRequests: RecordedRequest[] = [];
  readonly blobRequests: RecordedRequest[] = [];
  readonly #registry: Pick<RunningRegistry, 'url' | 'blobDataPath'>;
  readonly #front: Server;
  readonly #blobHost: Server;
  #frontUrl = '';
  #blobHostUrl = '';

  private constructor(registry: Pick<RunningRegistry, 'url' | 'blobDataPath'>) {
    this.#registry = registry;
    this.#front = createServer((req, res) => this.#redirect(req, res));
    this.#blobHost = createServer((req, res) => {
      this.#serveBlob(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(err));
      });
    });
  }

  static async start(registry: Pick<RunningRegistry, 'url' | 'blobDataPath'>): Promise<RedirectFront> {
    const front = new RedirectFront(registry);
    front.#frontUrl = await listenOn(front.#front, '127.0.0.2');
    try {
      front.#blobHostUrl = await listenOn(front.#blobHost, '127.0.0.3');
    } catch (err) {
      await closeServer(front.#front);
      throw err;
    }
    return front;
  }

  /** `127.0.0.2:PORT`, to use as the registry host in image references. */
  get host(): string {
    return new URL(this.#frontUrl).host;
  }

  /** `http://127.0.0.2:PORT` */
  get url(): string {
    return this.#frontUrl;
  }

  /** `http://127.0.0.3:PORT` */
  get blobHostUrl(): string {
    return this.#blobHostUrl;
  }

  async stop(): Promise<void> {
    await Promise.all([closeServer(this.#front), closeServer(this.#blobHost)]);
  }

  #redirect(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    this.frontRequests.push(record(req));
    const path = url.split('?')[0] ?? '';
    if (!path.startsWith('/v2/')) {
      res.writeHead(404).end();
      return;
    }
    const blob = BLOB_PATH.exec(path);
    const isBlobRead = blob !== null && (req.method === 'GET' || req.method === 'HEAD');
    const location = isBlobRead ? `${this.#blobHostUrl}/blobs/${blob[2]}` : `${this.#registry.url}${url}`;
    res.writeHead(307, { Location: location, 'Content-Length': 0 }).end();
  }

  async #serveBlob(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.blobRequests.push(record(req));
    const digest = /^\/blobs\/([^/?]+)/.exec(req.url ?? '')?.[1];
    let file: string;
    let size: number;
    try {
      file = this.#registry.blobDataPath(decodeURIComponent(digest ?? ''));
      size = (await stat(file)).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    const [start, end] = range ?? [0, size - 1];
    res.writeHead(range ? 206 : 200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': end - start + 1,
      'Accept-Ranges': 'bytes',
      ...(range && { 'Content-Range': `bytes ${start}-${end}/${size}` }),
    });
    if (req.method === 'HEAD' || end < start) {
      res.end();
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  }
}

/**
 * A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range as inclusive offsets; undefined means
 * the whole body (no header, or several ranges, which a server may ignore).
 */
function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [first, last] = [match[1] ?? '', match[2] ?? ''];
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return start >= size || end < start ? 'unsatisfiable' : [start, end];
}

function record(req: IncomingMessage): RecordedRequest {
  return { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
}
