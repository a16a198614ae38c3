// Credentials must never reach logs, errors or metrics. Every string that leaves a
// process through those paths goes through redact(); secrets learnt at run time
// (passwords, tokens) are registered so they are caught wherever they appear.

const REDACTED = '(redacted)';
const knownSecrets = new Set<string>();

/** Remember a secret so that redact() removes it from any text. Short values are ignored. */
export function registerSecret(secret: string | undefined | null): void {
  if (secret && secret.length >= 4) knownSecrets.add(secret);
}

const patterns: Array<[RegExp, string]> = [
  // userinfo in URLs: scheme://user:pass@host
  [/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(?::[^/\s@]*)?@/gi, `$1${REDACTED}@`],
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
  let out = text;
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
