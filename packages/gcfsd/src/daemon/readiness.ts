// What gcfsd's `GET /readyz` on --port answers: ready once containerd can use it (the FUSE
// tree is mounted, the snapshotter socket serves unless --snapshotter_uds_path= turned it
// off) and cfsd can be reached (when gcfsd has one). A DaemonSet's readiness probe reads it;
// liveness (/healthz) only asks that the process answers.

import type { ReadinessCheck } from '@gcfs/serving';

/** How long a probe waits for the channel to cfsd to connect (an idle channel reconnects). */
const CFSD_PROBE_MS = 2_000;

export class Readiness {
  #mounted = false;
  #snapshotter: 'serving' | 'off' | 'down' = 'down';
  #cfsdReachable: ((timeoutMs: number) => Promise<boolean>) | undefined;

  setMounted(mounted: boolean): void {
    this.#mounted = mounted;
  }

  setSnapshotter(state: 'serving' | 'off' | 'down'): void {
    this.#snapshotter = state;
  }

  /** The cfsd client's reachability; without one, cfsd is not part of readiness. */
  setCfsd(reachable: ((timeoutMs: number) => Promise<boolean>) | undefined): void {
    this.#cfsdReachable = reachable;
  }

  readonly check: ReadinessCheck = async () => {
    const missing: string[] = [];
    if (!this.#mounted) missing.push('the FUSE tree is not mounted');
    if (this.#snapshotter === 'down') missing.push('the snapshotter socket is not serving');
    if (this.#cfsdReachable !== undefined && !(await this.#cfsdReachable(CFSD_PROBE_MS))) {
      missing.push('cfsd (--addr) cannot be reached');
    }
    return missing;
  };
}
