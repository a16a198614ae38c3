import { createHash, type Hash } from 'node:crypto';
import { ErrorCode, GcfsError } from './errors.js';
import { quote } from './limits.js';

/** A content digest such as `sha256:<64 hex>`; construct with parseDigest(). */
export type Digest = string & { readonly __brand: 'Digest' };

const HEX_LENGTH = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof HEX_LENGTH;

export function isDigestAlgorithm(value: string): value is DigestAlgorithm {
  return Object.hasOwn(HEX_LENGTH, value);
}

/** Validate and return a digest; rejects unknown algorithms and malformed hex. */
export function parseDigest(value: string): Digest {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (colon <= 0 || !isDigestAlgorithm(algorithm)) {
    throw new GcfsError(ErrorCode.InvalidDigest, `invalid digest ${quote(value)}: unsupported algorithm`, {
      hint: 'digests look like sha256:<64 lowercase hex digits>',
    });
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new GcfsError(
      ErrorCode.InvalidDigest,
      `invalid digest ${quote(value)}: want ${HEX_LENGTH[algorithm]} lowercase hex digits`,
    );
  }
  return value as Digest;
}

export function isDigest(value: unknown): value is Digest {
  if (typeof value !== 'string') return false;
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** Incremental digest computation, for verifying streams as they pass. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private bytes = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  get size(): number {
    return this.bytes;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}

/** Throw a DigestMismatch error unless `actual` equals `expected`. */
export function assertDigest(expected: Digest, actual: Digest, what: string): void {
  if (expected !== actual) {
    throw new GcfsError(
      ErrorCode.DigestMismatch,
      `${what}: digest mismatch: expected ${expected}, got ${actual}`,
      {
        details: { expected, actual },
      },
    );
  }
}
