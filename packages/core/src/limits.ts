// Bounds on text that comes from outside: a socket, a label, a flag, a registry's answer.
// Each is checked where the text enters, before any parser or regular expression sees
// it, so that no input can make a process spend more than linear time on it; and an
// error quotes at most a short prefix, so a refusal never carries megabytes along.

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
  quoted: 512,
  /** Characters of an error text kept whole (a message, a chain of causes, a downloader answer). */
  errorText: 1024,
} as const;

/** The first `max` UTF-16 units of `text`, never splitting a surrogate pair. */
function cut(text: string, max: number): string {
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * `text` when it is at most `max` characters, else its start, an ellipsis and its length:
 * an error built from a hostile input (a 5,000-deep path in ENAMETOOLONG, a megabyte-long
 * image name) must not be as long as the input.
 */
export function boundText(text: string, max: number = Limits.errorText): string {
  if (text.length <= max) return text;
  return `${cut(text, max)}… (${text.length} characters)`;
}

/**
 * Untrusted text for a message: JSON-quoted, cut to `max` characters with the full length
 * said, so an error or a log line stays short whatever a client sent.
 */
export function quote(text: string, max: number = Limits.quoted): string {
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(cut(text, max))}… (${text.length} characters)`;
}
