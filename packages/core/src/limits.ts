// Bounds on text that comes from outside: a socket, a label, a flag, a registry's answer.
// Each is checked where the text enters, before any parser or regular expression sees
// it, so that no input can make a process spend more than linear time on it; and an
// error quotes at most a short prefix, so a refusal never carries megabytes along.

import { ErrorCode, GcfsError } from './errors.js';

/** The limits, in UTF-16 code units (a JavaScript string's length) unless said otherwise. */
export const Limits = {
  /** A repository name with its registry host (the distribution spec: 255 in total). */
  name: 255,
  /** A tag (the distribution spec: 128). */
  tag: 128,
  /** A digest: `sha512:` and 128 hex digits is the longest we accept. */
  digest: 135,
  /** A whole reference: name, `:tag` and `@digest`. */
  reference: 255 + 1 + 128 + 1 + 135,
  /** A media type (RFC 6838: 127 for the type and for the subtype). */
  mediaType: 255,
  /** A path on the host (PATH_MAX). */
  path: 4096,
  /** A containerd label, key and value together (containerd's own limit), or a List filter. */
  label: 4096,
  /** A snapshot key or name: lmdb keys are at most 1978 bytes, and 512 UTF-16 units make at most 1536. */
  snapshotKey: 512,
  /** A user name, password, identity token or session token: JWTs run to a few KiB. */
  credential: 64 * 1024,
  /** A command-line flag's value (a path, a list of hosts...). */
  flagValue: 64 * 1024,
  /** A platform, `os/architecture[/variant]`. */
  platform: 128,
  /** Bytes of all the headers of a registry's response (undici's default, made explicit). */
  headerBytes: 16 * 1024,
  /** Bytes of a manifest or index (the distribution registry refuses larger ones). */
  manifestBytes: 4 * 1024 * 1024,
  /** Bytes of an image config, read whole and parsed. */
  configBytes: 16 * 1024 * 1024,
  /** Bytes of a token server's answer. */
  tokenResponseBytes: 1024 * 1024,
  /** Bytes of a registry's error body, read for its summary. */
  errorBodyBytes: 64 * 1024,
  /** Bytes of one gRPC message on the Unix-socket services, whose calls are small. */
  socketMessageBytes: 256 * 1024,
  /** Reads in one ReportImageReads call (gcfsd keeps at most this many per image). */
  reportedReads: 10_000,
  /** Characters of untrusted text quoted in a message. */
  quoted: 256,
} as const;

/**
 * Untrusted text for a message: JSON-quoted, cut to `max` characters with the full length
 * said, so an error or a log line stays short whatever a client sent.
 */
export function quote(text: string, max: number = Limits.quoted): string {
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}

/** A path for a message: whole up to PATH_MAX, so an operator sees the real name, cut past it. */
export function quotePath(path: string): string {
  return quote(path, Limits.path);
}

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
