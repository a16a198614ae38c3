// The gRPC channel to cfsd and promise-shaped calls with a deadline and cancellation.

import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';

export interface TlsOptions {
  /** PEM of the CA that signed cfsd's certificate; the system roots when absent. */
  ca?: string | Buffer;
  /** Encrypt without verifying cfsd's certificate (tests, bootstrapping). */
  insecure?: boolean;
}

/** Plaintext without `tls` (loopback, Unix sockets), TLS otherwise. */
export function channelCredentials(tls: TlsOptions | undefined): ChannelCredentials {
  if (tls === undefined) return credentials.createInsecure();
  const ca = typeof tls.ca === 'string' ? Buffer.from(tls.ca) : (tls.ca ?? null);
  if (!tls.insecure) return credentials.createSsl(ca);
  return credentials.createSsl(ca, null, null, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
}

/**
 * Channel options: large enough messages for ReadBlocks answers, and reconnection paced
 * by the client's own backoff (grpc-js would otherwise wait up to 2 minutes between
 * connection attempts after cfsd was down, failing every retry meanwhile).
 */
export function channelOptions(reconnect: { initialMs: number; maxMs: number }): ChannelOptions {
  return {
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.initial_reconnect_backoff_ms': reconnect.initialMs,
    'grpc.max_reconnect_backoff_ms': reconnect.maxMs,
  };
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

type StreamMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
) => ClientReadableStream<Res>;

function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (signal === undefined) return () => {};
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

/** One unary call; rejects with the grpc-js ServiceError (CANCELLED when the signal fires). */
export function unaryCall<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    let detach = () => {};
    const call = method(request, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, response) => {
      detach();
      if (err) reject(err);
      else resolve(response);
    });
    detach = onAbort(signal, () => call.cancel());
    if (signal?.aborted) call.cancel();
  });
}

/** One server-streaming call, collected: the deadline bounds the whole stream. */
export async function streamCall<Req, Res>(
  method: StreamMethod<Req, Res>,
  request: Req,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<Res[]> {
  const stream = method(request, new Metadata(), { deadline: Date.now() + deadlineMs });
  const detach = onAbort(signal, () => stream.cancel());
  if (signal?.aborted) stream.cancel();
  try {
    const messages: Res[] = [];
    for await (const message of stream) messages.push(message as Res);
    return messages;
  } finally {
    detach();
  }
}
