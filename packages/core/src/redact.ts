// Credentials must never reach logs, errors or metrics. Every string that leaves a
// process through those paths goes through redact(); secrets learnt at run time
// (passwords, tokens) are registered so they are caught wherever they appear.
// redact() sees untrusted text of any length (a client's image name inside an error), so
// it runs in linear time: its patterns are checked by the ReDoS audit test, and the URL
// userinfo rule, which no backtracking pattern can express linearly, is a hand scan.

const REDACTED = '(redacted)';
const knownSecrets = new Set<string>();

/** Remember a secret so that redact() removes it from any text. Short values are ignored. */
export function registerSecret(secret: string | undefined | null): void {
  if (secret && secret.length >= 4) knownSecrets.add(secret);
}

const patterns: Array<[RegExp, string]> = [
  // Authorization header values
  [/\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]{4,}/g, `$1 ${REDACTED}`],
  // query or form parameters that carry secrets
  [
    /([?&;](?:access_token|refresh_token|token|password|passwd|secret|sig|signature|X-Amz-Signature|X-Goog-Signature)=)[^&\s"']+/gi,
    `$1${REDACTED}`,
  ],
  // JSON or key=value fields that carry secrets
  [
    /((?<![A-Za-z0-9_])"?(?:password|secret|auth|identitytoken|registrytoken|access_token|refresh_token|token|pull_secret|Secret)"?\s*[:=]\s*)"(?:[^"\\]|\\.)*"/gi,
    `$1"${REDACTED}"`,
  ],
];

/** Remove credentials from a piece of text (URLs, headers, JSON fields, registered secrets). */
export function redact(text: string): string {
  let out = redactUserinfo(text);
  for (const [re, replacement] of patterns) out = out.replace(re, replacement);
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** A URL string safe to show: no userinfo, no secret query parameters. */
export function redactUrl(url: string | URL): string {
  return redact(typeof url === 'string' ? url : url.href);
}

const SCHEME_CHAR = /^[a-z0-9+.-]$/i;
const SCHEME_START = /^[a-z]$/i;
const USERINFO_END = /^[/@\s]$/;

/**
 * `scheme://user[:password]@` becomes `scheme://(redacted)@`, as the pattern
 * /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(?::[^/\s@]*)?@/gi would do, in one pass: each `://`
 * is found once, its scheme read backwards (never past the last rewrite or the previous
 * `://`) and its userinfo forwards (never past the next `/`, so never past the next `://`).
 */
function redactUserinfo(text: string): string {
  let out = '';
  let copied = 0;
  for (let sep = text.indexOf('://'); sep !== -1; sep = text.indexOf('://', sep + 1)) {
    let start = sep;
    while (start > copied && SCHEME_CHAR.test(text[start - 1]!)) start--;
    // The scheme begins at the first letter of that run (the regex's leftmost match).
    while (start < sep && !SCHEME_START.test(text[start]!)) start++;
    if (start === sep) continue;
    let end = sep + 3;
    while (end < text.length && !USERINFO_END.test(text[end]!)) end++;
    const userinfo = text.slice(sep + 3, end);
    if (text[end] !== '@' || userinfo === '' || userinfo.startsWith(':')) continue;
    out += `${text.slice(copied, sep + 3)}${REDACTED}@`;
    copied = end + 1;
    sep = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
