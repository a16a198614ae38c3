import { performance } from 'node:perf_hooks';
import { sleep } from '@gcfs/core';

/**
 * Whether cfsd is serving containers that start: calls under way, and when the last one
 * ended. Background work (compaction) waits for a quiet period, so that a start's reads do
 * not share the CPU and the disk with it.
 */
export class ServingActivity {
  readonly quietMs: number;
  #inFlight = 0;
  #lastEnd = Number.NEGATIVE_INFINITY;
  /** Woken when the last call in flight ends. */
  #idle: Array<() => void> = [];

  constructor(quietMs: number) {
    this.quietMs = quietMs;
  }

  /** A call starts; call the returned function when it ends. */
  enter(): () => void {
    this.#inFlight++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#inFlight--;
      this.#lastEnd = performance.now();
      if (this.#inFlight === 0) for (const wake of this.#idle.splice(0)) wake();
    };
  }

  /** Resolves once no call is under way and none ended for quietMs; rejects when `signal` fires. */
  async untilQuiet(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve, reject) => {
          const abort = () => reject(signal.reason);
          signal.addEventListener('abort', abort, { once: true });
          this.#idle.push(() => {
            signal.removeEventListener('abort', abort);
            resolve();
          });
        });
        continue;
      }
      const left = this.quietMs - (performance.now() - this.#lastEnd);
      if (left <= 0) return;
      await sleep(left, signal);
    }
  }
}
