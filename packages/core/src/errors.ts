import { boundText, Limits } from './limits.js';
import { redact } from './redact.js';

/**
 * Stable error codes. They are part of the public contract (logs, metrics labels,
 * gRPC details): add new ones, never rename.
 */
export const ErrorCode = {
  InvalidArgument: 'ERR_INVALID_ARGUMENT',
  InvalidReference: 'ERR_INVALID_REFERENCE',
  InvalidDigest: 'ERR_INVALID_DIGEST',
  InvalidDescriptor: 'ERR_INVALID_DESCRIPTOR',
  InvalidFlag: 'ERR_INVALID_FLAG',
  DigestMismatch: 'ERR_DIGEST_MISMATCH',
  SizeMismatch: 'ERR_SIZE_MISMATCH',
  UnsupportedMediaType: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  UnsupportedSchema: 'ERR_UNSUPPORTED_SCHEMA',
  PlatformNotFound: 'ERR_PLATFORM_NOT_FOUND',
  NotFound: 'ERR_NOT_FOUND',
  Unauthorized: 'ERR_UNAUTHORIZED',
  Denied: 'ERR_DENIED',
  TooManyRequests: 'ERR_TOO_MANY_REQUESTS',
  RegistryUnavailable: 'ERR_REGISTRY_UNAVAILABLE',
  RegistryProtocol: 'ERR_REGISTRY_PROTOCOL',
  InsecureNotAllowed: 'ERR_INSECURE_NOT_ALLOWED',
  CredentialHelper: 'ERR_CREDENTIAL_HELPER',
  Config: 'ERR_CONFIG',
  Aborted: 'ERR_ABORTED',
  Internal: 'ERR_INTERNAL',
  /** Stored data failed a consistency check (truncated file, bad checksum). */
  StoreCorrupt: 'ERR_STORE_CORRUPT',
  /** A session token that was not issued by this service (or its key changed). */
  SessionInvalid: 'ERR_SESSION_INVALID',
  SessionExpired: 'ERR_SESSION_EXPIRED',
  /** The image (or one of its layers) cannot be streamed; the node must pull it normally. */
  NotStreamable: 'ERR_NOT_STREAMABLE',
  /** A call names something outside what the caller's session grants. */
  PermissionDenied: 'ERR_PERMISSION_DENIED',
  /** The content service cannot be reached (or is overloaded) after the client's retries. */
  BackendUnavailable: 'ERR_BACKEND_UNAVAILABLE',
  /** A content service call did not finish within its deadline. */
  BackendDeadlineExceeded: 'ERR_BACKEND_DEADLINE_EXCEEDED',
  /** The content service failed a call or answered against the protocol. */
  BackendError: 'ERR_BACKEND_ERROR',
  /** A layer blob that is not a well-formed tar (or does not decompress). */
  BadLayer: 'ERR_BAD_LAYER',
  /** A tar that tries to escape its root or exceeds our limits: refused, never half-used. */
  HostileTar: 'ERR_HOSTILE_TAR',
  /** A well-formed tar entry of a kind we do not serve (sparse files, volume labels...). */
  UnsupportedTarEntry: 'ERR_UNSUPPORTED_TAR_ENTRY',
  /** A stored layer index that fails its checksum or validation. */
  CorruptIndex: 'ERR_CORRUPT_INDEX',
  /** A content block whose size or checksum is not what the index says. */
  CorruptBlock: 'ERR_CORRUPT_BLOCK',
  /** The local file system failed while a layer was unpacked (no space, I/O error, not root). */
  LayerWrite: 'ERR_LAYER_WRITE',
  /** The layer downloader (`gcfsd --downloader`) cannot be reached on its socket. */
  DownloaderUnavailable: 'ERR_DOWNLOADER_UNAVAILABLE',
  /** Something of that name exists already (a snapshot key, a committed name). */
  AlreadyExists: 'ERR_ALREADY_EXISTS',
  /** The call is valid but the state forbids it (removing a snapshot that has children). */
  FailedPrecondition: 'ERR_FAILED_PRECONDITION',
  /** A streamed layer cannot be served now (its image is not registered, its index not loaded). */
  LayerUnavailable: 'ERR_LAYER_UNAVAILABLE',
  /** The content service is still indexing the layer; ask again (its index is on its way). */
  LayerIndexing: 'ERR_LAYER_INDEXING',
  /** The image is smaller than streaming pays for (gcfsd's --min_streamed_image_size_mb): pulled normally. */
  ImageTooSmall: 'ERR_IMAGE_TOO_SMALL',
  /** gcfsd's admin socket cannot be reached (gcfsd is not running, or another mount point's). */
  GcfsdUnavailable: 'ERR_GCFSD_UNAVAILABLE',
  /** A wait ended at its timeout before what it waited for happened (gcfsctl wait --timeout). */
  Timeout: 'ERR_TIMEOUT',
  /** gcfsd runs without a content service address (no --addr): nothing is streamed, images are pulled normally. */
  NoBackend: 'ERR_NO_BACKEND',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface GcfsErrorOptions {
  cause?: unknown;
  /** What the user can do about it, shown after the message. */
  hint?: string;
  /** Structured facts for logs (values are redacted on output). */
  details?: Record<string, string | number | boolean | undefined>;
}

/** The one error base class of the project: a stable code, a cause, a hint, no credentials. */
export class GcfsError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, string | number | boolean | undefined>;

  constructor(code: ErrorCode, message: string, options: GcfsErrorOptions = {}) {
    super(boundText(redact(message)), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GcfsError';
    this.code = code;
    this.hint = options.hint === undefined ? undefined : boundText(redact(options.hint));
    // Details are printed whole in log lines: a client's megabyte name must not be.
    this.details = Object.fromEntries(
      Object.entries(options.details ?? {}).map(([key, value]) => [
        key,
        typeof value === 'string' ? boundText(value) : value,
      ]),
    );
  }

  /** One line for a human: message, hint and the chain of causes, credentials removed. */
  describe(): string {
    return describeError(this);
  }
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether `value` is one of our stable codes (as a peer or a file sent it). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && ERROR_CODES.has(value);
}

export function isGcfsError(err: unknown, code?: ErrorCode): err is GcfsError {
  return err instanceof GcfsError && (code === undefined || err.code === code);
}

/**
 * Render any error with its causes on one line, credentials removed. Each message is cut
 * to Limits.errorText (after redaction, so no secret is cut in half and left readable), the
 * line to twice that.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  const add = (text: string) => parts.push(boundText(redact(text)));
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      const prefix = typeof code === 'string' && depth > 0 ? `${code}: ` : '';
      add(prefix + current.message);
      if (current instanceof GcfsError && current.hint && depth === 0) add(`hint: ${current.hint}`);
      current = current.cause;
    } else {
      add(String(current));
      break;
    }
  }
  return boundText(parts.join(': '), 2 * Limits.errorText);
}

/** Normalise an unknown thrown value into a GcfsError, keeping an existing code. */
export function toGcfsError(err: unknown, code: ErrorCode = ErrorCode.Internal, message?: string): GcfsError {
  if (err instanceof GcfsError && message === undefined) return err;
  const text = message ?? (err instanceof Error ? err.message : String(err));
  return new GcfsError(err instanceof GcfsError && message === undefined ? err.code : code, text, {
    cause: err,
  });
}
