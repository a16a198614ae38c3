// Messages between indexLayerThreaded and its worker, and errors carried across.
import { type ErrorCode, GcfsError } from '@gcfs/core';

/** Bytes of blob the main thread sends ahead of what the worker took. */
export const WINDOW_BYTES = 8 << 20;
/** Blocks the worker sends ahead of what the main thread wrote. */
export const WINDOW_BLOCKS = 16;

export type ToWorker = { type: 'chunk'; data: Uint8Array } | { type: 'end' } | { type: 'written' };

export type ToMain =
  | { type: 'taken'; bytes: number }
  | { type: 'block'; data: Uint8Array }
  | { type: 'done'; serialized: Uint8Array; contentSize: number; blockCount: number }
  | { type: 'failed'; error: WireError };

/** An error as structured clone keeps it: GcfsError's code, details and hint, zlib's code, causes. */
export interface WireError {
  message: string;
  gcfs?: { code: string; hint?: string; details: Record<string, string | number | boolean | undefined> };
  code?: string;
  errno?: number;
  cause?: WireError;
}

export function toWire(err: unknown, depth = 0): WireError {
  if (!(err instanceof Error)) return { message: String(err) };
  const wire: WireError = { message: err.message };
  if (err instanceof GcfsError) {
    wire.gcfs = {
      code: err.code,
      details: err.details,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
    };
  }
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof code === 'string') wire.code = code;
  if (typeof errno === 'number') wire.errno = errno;
  if (err.cause !== undefined && depth < 8) wire.cause = toWire(err.cause, depth + 1);
  return wire;
}

export function fromWire(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : fromWire(wire.cause);
  if (wire.gcfs) {
    return new GcfsError(wire.gcfs.code as ErrorCode, wire.message, {
      details: wire.gcfs.details,
      ...(wire.gcfs.hint === undefined ? {} : { hint: wire.gcfs.hint }),
      ...(cause === undefined ? {} : { cause }),
    });
  }
  const err = new Error(wire.message, cause === undefined ? undefined : { cause });
  if (wire.code !== undefined) Object.assign(err, { code: wire.code });
  if (wire.errno !== undefined) Object.assign(err, { errno: wire.errno });
  return err;
}
