import type { EventEmitter } from 'node:events';

// The library never logs: it reports what it does through these events, and daemons
// decide what to log or measure. URLs in events are already redacted.

/** One HTTP exchange (after it got a status, or failed without one). */
export interface RequestEvent {
  method: string;
  url: string;
  status?: number;
  attempt: number;
  durationMs: number;
  error?: string;
}

/** A request is about to be retried after a retryable failure. */
export interface RetryEvent {
  method: string;
  url: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** A bearer token was fetched from a token server. */
export interface TokenEvent {
  realm: string;
  service?: string;
  scope: string;
  expiresInSec: number;
}

/** An endpoint (usually a mirror) could not serve; the next one is tried. */
export interface FallbackEvent {
  endpoint: string;
  next: string;
  reason: string;
}

/** A blob stream lost its connection and resumes at `offset` with a Range request. */
export interface ResumeEvent {
  digest: string;
  offset: number;
  attempt: number;
  reason: string;
}

export interface RegistryEvents {
  request: [RequestEvent];
  retry: [RetryEvent];
  token: [TokenEvent];
  fallback: [FallbackEvent];
  resume: [ResumeEvent];
}

export type RegistryEventEmitter = EventEmitter<RegistryEvents>;
