// Refusals of over-long text where it enters (Limits says how long is too long).

import { ErrorCode, GcfsError } from './errors.js';
import { Limits, quote } from './limits.js';

export interface LengthCheck {
  /** The error code (default `InvalidArgument`). */
  code?: ErrorCode;
  /** A credential: its length is said, never a prefix of it. */
  secret?: boolean;
}

/**
 * `text` when it is at most `max` characters long, else a GcfsError naming `what` and
 * quoting a prefix (none for a secret). Call it where the text enters.
 */
export function checkLength(what: string, text: string, max: number, check: LengthCheck = {}): string {
  if (text.length > max) {
    const shown = check.secret ? '' : `: ${quote(text)}`;
    throw new GcfsError(
      check.code ?? ErrorCode.InvalidArgument,
      `${what} is ${text.length} characters long, more than ${max}${shown}`,
    );
  }
  return text;
}

/** Registry credentials as every request carries them (absent fields are empty). */
export interface CredentialFields {
  username?: string;
  password?: string;
  identityToken?: string;
}

/** Refuse over-long credentials, without quoting them; call before registering them as secrets. */
export function checkCredentialLengths(what: string, credential: CredentialFields | undefined): void {
  for (const field of ['username', 'password', 'identityToken'] as const) {
    checkLength(`${what}.${field}`, credential?.[field] ?? '', Limits.credential, { secret: true });
  }
}

/**
 * The image a request names, refused when missing or over-long, and its credentials, refused
 * when over-long (see checkCredentialLengths); call before anything parses or registers them.
 */
export function checkImageRequest(
  image: string,
  credentialField: string,
  credential: CredentialFields | undefined,
): string {
  if (!image) throw new GcfsError(ErrorCode.InvalidArgument, 'image is required');
  checkLength('image', image, Limits.reference);
  checkCredentialLengths(credentialField, credential);
  return image;
}
