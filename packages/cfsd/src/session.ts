import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';

/** What a session token grants: content calls on one image, until `expiresAt`. */
export interface SessionClaims {
  /** The image's manifest digest: every content call is checked against its layers. */
  manifestDigest: Digest;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/**
 * Short-lived image session tokens: `base64url(claims).base64url(HMAC-SHA256)`. Stateless
 * to verify, so replicas sharing the key accept each other's tokens; without a shared key
 * each start picks a fresh one and old tokens fail as UNAUTHENTICATED (clients re-auth).
 */
export class SessionKeys {
  private readonly key: Buffer;
  readonly ttlMs: number;

  constructor(options: { key?: Buffer; ttlMs: number }) {
    this.key = options.key ?? randomBytes(32);
    if (this.key.length < 32) {
      throw new GcfsError(ErrorCode.Config, 'session key must be at least 32 bytes');
    }
    this.ttlMs = options.ttlMs;
  }

  issue(manifestDigest: Digest, now = Date.now()): { token: string; claims: SessionClaims } {
    const claims: SessionClaims = { manifestDigest, expiresAt: now + this.ttlMs };
    const body = Buffer.from(JSON.stringify({ m: claims.manifestDigest, e: claims.expiresAt })).toString(
      'base64url',
    );
    return { token: `${body}.${this.sign(body)}`, claims };
  }

  /** The claims of a valid, unexpired token; throws SessionInvalid otherwise. */
  verify(token: string, now = Date.now()): SessionClaims {
    const dot = token.indexOf('.');
    const body = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(body), 'base64url');
    if (dot <= 0 || mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      throw new GcfsError(ErrorCode.SessionInvalid, 'invalid session token', {
        hint: 'call AuthImage for a new session',
      });
    }
    const raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { m: Digest; e: number };
    if (raw.e <= now) {
      throw new GcfsError(ErrorCode.SessionExpired, 'session token expired', {
        hint: 'call AuthImage for a new session',
      });
    }
    return { manifestDigest: raw.m, expiresAt: raw.e };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
