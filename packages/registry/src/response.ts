import { boundText, ErrorCode, GcfsError, Limits, redactUrl } from '@gcfs/core';
import type { HttpResponse } from './transport.js';

/** First value of a response header (undici gives arrays for repeated headers). */
export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Drop a response body we will not read (without the abort error undici would emit unheard). */
export function discard(res: HttpResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

/** Read a whole response body, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      discard(res);
      throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: response larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

const STATUS_CODES: Record<number, ErrorCode> = {
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Denied,
  404: ErrorCode.NotFound,
  429: ErrorCode.TooManyRequests,
};

// Registry error codes (distribution spec) that say more than the HTTP status.
const REGISTRY_CODES: Record<string, ErrorCode> = {
  DIGEST_INVALID: ErrorCode.DigestMismatch,
  SIZE_INVALID: ErrorCode.SizeMismatch,
  DENIED: ErrorCode.Denied,
};

/** Characters of a registry's error kept in our message. */
const ERROR_SUMMARY = 200;

/** `CODE: message; CODE: message` from a registry's JSON error body, or its text. */
function summarize(body: string): { summary: string; codes: string[] } {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      const codes = parsed.errors.map((e) => String(e.code ?? 'UNKNOWN'));
      const summary = parsed.errors.map((e, i) => `${codes[i]}: ${String(e.message ?? '')}`).join('; ');
      return { summary: boundText(summary, ERROR_SUMMARY), codes };
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return { summary: boundText(body.replace(/\s+/g, ' ').trim(), ERROR_SUMMARY), codes: [] };
}

/**
 * The GcfsError for an unsuccessful response, with the registry's error body summarised.
 * Consumes the body. A 401 whose challenge says `insufficient_scope` means the registry
 * knows who we are (or that we are anonymous) and refuses: that is Denied.
 */
export async function responseError(res: HttpResponse, what: string): Promise<GcfsError> {
  let body = '';
  try {
    body = (await readBody(res, Limits.errorBodyBytes, what)).toString('utf8');
  } catch {
    // the status alone still says what happened
  }
  const { summary, codes } = summarize(body);
  let code: ErrorCode =
    STATUS_CODES[res.status] ??
    (res.status >= 500 ? ErrorCode.RegistryUnavailable : ErrorCode.RegistryProtocol);
  for (const registryCode of codes) code = REGISTRY_CODES[registryCode] ?? code;
  if (res.status === 401 && /error="?insufficient_scope/.test(header(res, 'www-authenticate') ?? '')) {
    code = ErrorCode.Denied;
  }
  const hint =
    code === ErrorCode.Unauthorized || code === ErrorCode.Denied
      ? `check the credentials for ${res.url.host} and their access to this repository`
      : undefined;
  return new GcfsError(code, `${what}: HTTP ${res.status}${summary ? ` (${summary})` : ''}`, {
    ...(hint === undefined ? {} : { hint }),
    details: { status: res.status, url: redactUrl(res.url), registryCodes: codes.join(',') || undefined },
  });
}

/** `bytes start-end/total` (total may be `*`); undefined when malformed. */
export function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total?: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!match) return undefined;
  const range = { start: Number(match[1]), end: Number(match[2]) };
  return match[3] === '*' ? range : { ...range, total: Number(match[3]) };
}
