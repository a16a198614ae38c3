// Reaching gcfsd's admin socket, with errors that name the fix. gRPC reports every failure to
// connect as UNAVAILABLE; the socket is tried with a plain connect first, so that its errno
// says which: not root (EACCES), gcfsd not running (ENOENT, ECONNREFUSED), or something else.

import { connect } from 'node:net';
import { ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import { AdminClient, adminSocketPath, isUnimplemented } from '@gcfs/gcfsd/admin-client';

/** Calls other than wait's polling answer within this, or gcfsd is stuck. */
const CALL_TIMEOUT_MS = 60_000;

const START_HINT =
  "start gcfsd (systemctl start gcfsd, or its DaemonSet's pod), or point gcfsctl at the running gcfsd with --mount_point (its --mount_point) or --socket";

/** --socket, or admin.sock beside --mount_point as gcfsd places it. */
export function socketPathOf(options: { socket?: string | undefined; mount_point: string }): string {
  return options.socket || adminSocketPath(options.mount_point);
}

/** Why a connect to `path` failed, as the operator can act on it. */
export function explainConnectError(path: string, code: string | undefined, cause: unknown): GcfsError {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new GcfsError(ErrorCode.PermissionDenied, `permission denied on gcfsd's admin socket ${path}`, {
        cause,
        hint: 'run gcfsctl as root (sudo gcfsctl ...): the admin socket and its directory are root-only',
      });
    case 'ENOENT':
      return new GcfsError(ErrorCode.GcfsdUnavailable, `gcfsd is not running: no admin socket at ${path}`, {
        cause,
        hint: START_HINT,
      });
    case 'ECONNREFUSED':
      return new GcfsError(
        ErrorCode.GcfsdUnavailable,
        `gcfsd is not running: nothing listens on ${path} (a socket left by a gcfsd that stopped)`,
        { cause, hint: START_HINT },
      );
    default:
      return new GcfsError(ErrorCode.GcfsdUnavailable, `cannot reach gcfsd's admin socket ${path}`, {
        cause,
        hint: `check that ${path} is gcfsd's admin socket, then ${START_HINT}`,
      });
  }
}

function probe(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(explainConnectError(path, err.code, err));
    });
  });
}

/** A client of the admin socket at `path`, once something answers there. */
export async function connectAdmin(path: string): Promise<AdminClient> {
  await probe(path);
  return new AdminClient(path, { timeoutMs: CALL_TIMEOUT_MS });
}

/** gcfsd's own message and hint from a failed call (its text, not the gRPC wrapping around it). */
export function explainCallError(path: string, err: unknown): GcfsError {
  if (!isGcfsError(err)) return new GcfsError(ErrorCode.Internal, String(err), { cause: err });
  if (isUnimplemented(err)) {
    return new GcfsError(ErrorCode.FailedPrecondition, `gcfsd at ${path} is older than gcfsctl`, {
      cause: err,
      hint: "upgrade gcfsd, or use the gcfsctl of gcfsd's version",
    });
  }
  if (err.code === ErrorCode.GcfsdUnavailable) return explainConnectError(path, undefined, err);
  const details = (err.cause as { details?: string } | undefined)?.details;
  if (details === undefined) return err;
  // gcfsd sent `message: hint: fix` (describeError); split them again.
  const [message, hint] = details.split(/: hint: /, 2) as [string, string | undefined];
  return new GcfsError(err.code, message, { cause: err, ...(hint === undefined ? {} : { hint }) });
}
