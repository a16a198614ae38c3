import { chmod, lstat, rm, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ErrorCode, ensurePrivateDir, GcfsError, Limits, PRIVATE_FILE_MODE } from '@gcfs/core';
import { Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { toServiceError } from './grpc-errors.js';

/**
 * Make way for a server socket at `path`: its parent dir made private (0700, created or
 * tightened: the socket is created with the umask's mode before it is chmod-ed, and nobody
 * may connect in between), a stale socket of a dead process removed. Refuses to remove
 * anything that is not a socket, or a socket that a live process still answers on.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await ensurePrivateDir(dirname(path));
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new GcfsError(ErrorCode.Config, `${path} exists and is not a socket: not replacing it`, {
      hint: 'choose another socket path or remove the file',
    });
  }
  if (await answers(path)) {
    throw new GcfsError(ErrorCode.Config, `another process is serving on ${path}`, {
      hint: 'is the daemon already running?',
    });
  }
  await unlink(path);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Bind `server` to `address` (`host:port` or `unix:/path`); resolves with the port bound. */
export function bindGrpc(
  server: Server,
  address: string,
  credentials = ServerCredentials.createInsecure(),
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/**
 * A server for a node-local API whose calls are small (the downloader, gcfsd's admin):
 * the transport refuses a larger message before it is decoded.
 */
export function createUnixSocketServer(): Server {
  return new Server({ 'grpc.max_receive_message_length': Limits.socketMessageBytes });
}

/**
 * Serve gRPC on a root-only Unix socket (connecting needs write permission on it): a stale
 * socket is replaced, the socket is 0600 in a 0700 directory.
 */
export async function bindGrpcUnixSocket(server: Server, path: string): Promise<string> {
  await prepareSocketPath(path);
  const address = `unix:${path}`;
  await bindGrpc(server, address);
  try {
    await chmod(path, PRIVATE_FILE_MODE);
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  return address;
}

/** Stop accepting calls, give calls in flight `graceMs`, then cut them; removes `socketPath`. */
export async function stopGrpc(server: Server, graceMs: number, socketPath?: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
  if (socketPath) await rm(socketPath, { force: true });
}

/**
 * A unary handler from a function of the request: its result is the answer, anything it throws
 * (synchronously or not) the failure, as toServiceError words it.
 */
export function unary<Req, Res>(handle: (req: Req) => Res | Promise<Res>) {
  return (call: { request: Req }, callback: (err: Partial<ServiceError> | null, res?: Res) => void) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}
