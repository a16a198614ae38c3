// What gcfsd's `GET /readyz` on --port answers: ready once containerd can use it (the FUSE
// tree is mounted, the snapshotter socket serves unless --snapshotter_uds_path= turned it
// off) and cfsd answers its health check (when gcfsd has one: without --addr it streams
// nothing and is ready without it). A DaemonSet's readiness probe reads it;
// liveness (/healthz) only asks that the process answers.

import type { ReadinessCheck } from '@gcfs/serving';

/** How long a probe waits for cfsd's health check (an idle channel reconnects first). */
const CFSD_PROBE_MS = 2_000;

type CfsdHealth = (timeoutMs: number) => Promise<{ serving: true } | { serving: false; reason: string }>;

export class Readiness {
  #mounted = false;
  #snapshotter: 'serving' | 'off' | 'down' = 'down';
  #cfsdHealth: CfsdHealth | undefined;

  setMounted(mounted: boolean): void {
    this.#mounted = mounted;
  }

  setSnapshotter(state: 'serving' | 'off' | 'down'): void {
    this.#snapshotter = state;
  }

  /** The cfsd client's health check; without one, cfsd is not part of readiness. */
  setCfsd(health: CfsdHealth | undefined): void {
    this.#cfsdHealth = health;
  }

  readonly check: ReadinessCheck = async () => {
    const missing: string[] = [];
    if (!this.#mounted) missing.push('the FUSE tree is not mounted');
    if (this.#snapshotter === 'down') missing.push('the snapshotter socket is not serving');
    const cfsd = await this.#cfsdHealth?.(CFSD_PROBE_MS);
    if (cfsd !== undefined && !cfsd.serving) missing.push(`cfsd (--addr) is not serving: ${cfsd.reason}`);
    return missing;
  };
}
