import { ErrorCode, GcfsError } from './errors.js';

export interface BackoffOptions {
  /** First delay in ms. */
  initialMs: number;
  /** Upper bound of any single delay in ms. */
  maxMs: number;
  /** Multiplier per attempt. */
  factor?: number;
  /** Fraction of the delay randomised (0..1) so that clients do not retry in lockstep. */
  jitter?: number;
}

/** Delay before retry number `attempt` (1-based): exponential, capped, jittered. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0.2;
  const base = Math.min(options.maxMs, options.initialMs * factor ** Math.max(0, attempt - 1));
  return Math.max(0, Math.round(base * (1 - jitter + Math.random() * 2 * jitter)));
}

/** Resolve after `ms`, or reject with an Aborted error when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal): GcfsError {
  return new GcfsError(ErrorCode.Aborted, 'operation aborted', { cause: signal.reason });
}
