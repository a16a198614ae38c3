// Repeating cfsd calls that failed for a reason that may pass (see status.ts), a bounded
// number of times, with a delay between attempts.

import { type BackoffOptions, backoffDelay, type GcfsError, sleep } from '@gcfs/core';
import { type CallKind, callError, isRetryable } from './status.js';

export interface RetryPolicy {
  /** Attempts in all, the first one included (at least 1). */
  maxAttempts: number;
  /** Delay before retry number `retry` (1-based). */
  delayMs(retry: number): number;
}

/** Exponential, capped, jittered delays (content calls). */
export function backoffPolicy(maxAttempts: number, backoff: BackoffOptions): RetryPolicy {
  return { maxAttempts, delayMs: (retry) => backoffDelay(retry, backoff) };
}

/** The same delay every time (AuthImage: --authimage_max_attempts, --authimage_retry_interval). */
export function fixedPolicy(maxAttempts: number, intervalMs: number): RetryPolicy {
  return { maxAttempts, delayMs: () => intervalMs };
}

export interface RetryInfo {
  call: CallKind;
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  error: GcfsError;
}

/**
 * Run `attempt` until it succeeds, fails for good, or the policy's attempts are spent.
 * Always rejects with a GcfsError (see callError) that names the attempts made.
 */
export async function withRetry<T>(
  kind: CallKind,
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  onRetry: (info: RetryInfo) => void,
  signal?: AbortSignal,
): Promise<T> {
  const maxAttempts = Math.max(1, policy.maxAttempts);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const error = callError(kind, err, n);
      if (n >= maxAttempts || !isRetryable(err, kind) || signal?.aborted) throw error;
      const delayMs = policy.delayMs(n);
      onRetry({ call: kind, attempt: n, delayMs, error });
      await sleep(delayMs, signal);
    }
  }
}
