// When the FUSE side last had to fetch from cfsd. A container that starts reads its working
// set in bursts through FUSE; whole-layer downloads started at the same moment compete with
// those reads for the link (on a 100 Mbit/s node they more than double the bytes before the
// app is ready), so a new image's downloads wait for a pause in on-demand reads.

import { sleep } from '@gcfs/core';

export interface QuietOptions {
  /** How long remote reads must have paused (and at least how long to wait). */
  quietMs: number;
  /** Never wait longer than this. */
  maxMs: number;
  signal?: AbortSignal;
}

export class ReadActivity {
  #lastRemoteRead = 0;

  /** A FUSE read was answered (`remote`: from cfsd). */
  record(event: { source: 'remote' | 'local' }): void {
    if (event.source === 'remote') this.#lastRemoteRead = Date.now();
  }

  /** Resolves after `quietMs` without remote reads, or after `maxMs`; rejects when aborted. */
  async quiet({ quietMs, maxMs, signal }: QuietOptions): Promise<void> {
    const start = Date.now();
    const deadline = start + maxMs;
    for (;;) {
      const quietSince = Math.max(start, this.#lastRemoteRead);
      const now = Date.now();
      if (now - quietSince >= quietMs || now >= deadline) return;
      await sleep(Math.min(quietSince + quietMs, deadline) - now, signal);
    }
  }
}
