import { Readable } from 'node:stream';
import {
  abortError,
  assertDigest,
  type BackoffOptions,
  backoffDelay,
  type Descriptor,
  Digester,
  describeError,
  digestAlgorithm,
  ErrorCode,
  GcfsError,
  sleep,
} from '@gcfs/core';
import type { RegistryEventEmitter } from './events.js';
import { discard, header, parseContentRange } from './response.js';
import { type HttpResponse, isRetryableNetworkError } from './transport.js';

export interface BlobStreamOptions {
  /** Open the blob at `offset` (with a Range request when > 0); throws for error statuses. */
  open: (offset: number) => Promise<HttpResponse>;
  /** Connection losses tolerated in a row without progress. */
  maxAttempts: number;
  backoff: BackoffOptions;
  events: RegistryEventEmitter;
  signal?: AbortSignal | undefined;
  what: string;
}

const HIGH_WATER_MARK = 1024 * 1024;

/** How many bytes of this response precede `offset` (a registry may ignore Range and send it all). */
function bytesToSkip(res: HttpResponse, offset: number, what: string): number {
  if (offset === 0 || res.status === 200) return offset;
  const range = parseContentRange(header(res, 'content-range'));
  if (res.status !== 206 || range?.start !== offset) {
    throw new GcfsError(
      ErrorCode.RegistryProtocol,
      `${what}: resuming at ${offset} got HTTP ${res.status} with Content-Range ${header(res, 'content-range') ?? 'none'}`,
    );
  }
  return 0;
}

function sizeMismatch(desc: Descriptor, got: string, what: string): GcfsError {
  return new GcfsError(ErrorCode.SizeMismatch, `${what}: expected ${desc.size} bytes, ${got}`, {
    details: { expected: desc.size },
  });
}

/**
 * A whole-blob stream that resumes with Range requests after lost connections and checks
 * size and digest as data passes. It fails at the end, instead of ending, when the content
 * is wrong: consumers must treat what they received as unverified until 'end'.
 */
export function verifiedBlobStream(desc: Descriptor, options: BlobStreamOptions): Readable {
  const { signal, what } = options;
  async function* chunks(): AsyncGenerator<Buffer> {
    const digester = new Digester(digestAlgorithm(desc.digest));
    let offset = 0;
    let failures = 0;
    while (true) {
      const res = await options.open(offset);
      let reason: string;
      try {
        // Inside the try: a refused response is discarded too, never left holding its connection.
        let skip = bytesToSkip(res, offset, what);
        const announced = Number(header(res, 'content-length') ?? Number.NaN);
        if (Number.isFinite(announced) && announced !== desc.size - offset + skip) {
          throw sizeMismatch(desc, `the registry announces ${announced + offset - skip}`, what);
        }
        for await (const chunk of res.body) {
          let data = chunk as Buffer;
          if (skip > 0) {
            const dropped = Math.min(skip, data.length);
            skip -= dropped;
            data = data.subarray(dropped);
            if (data.length === 0) continue;
          }
          if (offset + data.length > desc.size) throw sizeMismatch(desc, 'got more', what);
          digester.update(data);
          offset += data.length;
          failures = 0;
          yield data;
        }
        // A body that ended cleanly was complete as far as the server knows: no point resuming.
        if (offset !== desc.size) throw sizeMismatch(desc, `got ${offset}`, what);
        break;
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (err instanceof GcfsError) throw err;
        if (!isRetryableNetworkError(err)) {
          throw new GcfsError(ErrorCode.RegistryUnavailable, `${what}: ${describeError(err)}`, {
            cause: err,
          });
        }
        reason = describeError(err);
        if (++failures >= options.maxAttempts) {
          throw new GcfsError(ErrorCode.RegistryUnavailable, `${what}: connection lost at byte ${offset}`, {
            cause: err,
          });
        }
      } finally {
        discard(res);
      }
      options.events.emit('resume', {
        digest: desc.digest,
        offset,
        attempt: failures,
        reason,
      });
      await sleep(backoffDelay(failures, options.backoff), signal);
    }
    assertDigest(desc.digest, digester.digest(), what);
  }

  const stream = Readable.from(chunks(), { objectMode: false, highWaterMark: HIGH_WATER_MARK });
  if (signal) {
    const onAbort = () => stream.destroy(abortError(signal));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return stream;
}
