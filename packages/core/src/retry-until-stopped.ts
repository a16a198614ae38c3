// Retry until stopped: work a daemon must get done eventually, whatever its peers do
// (authorizing a restored image with cfsd, downloading a layer), tried again with a
// growing delay until it is done or the daemon stops.

import { type BackoffOptions, backoffDelay, sleep } from './backoff.js';

export interface RetryUntilStoppedOptions {
  /** Delays between attempts (attempt n waits backoffDelay(n) before attempt n + 1). */
  backoff: BackoffOptions;
  /** Stops the retries: the current attempt finishes, no other one starts. */
  signal: AbortSignal;
}

/**
 * Call `attempt` (numbered from 1) until it returns true ("done": succeeded, or nothing
 * more to do). Resolves true when an attempt said done, false when `signal` stopped the
 * retries first. An attempt that throws is a bug of the caller and rejects.
 */
export async function retryUntilStopped(
  attempt: (n: number) => Promise<boolean>,
  options: RetryUntilStoppedOptions,
): Promise<boolean> {
  for (let n = 1; !options.signal.aborted; n++) {
    if (await attempt(n)) return true;
    try {
      await sleep(backoffDelay(n, options.backoff), options.signal);
    } catch {
      return false;
    }
  }
  return false;
}
