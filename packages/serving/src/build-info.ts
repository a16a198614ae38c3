// `gcfs_build_info{version,commit} 1` on every registry we serve, so that a scrape says which
// build each process runs (during a rollout, old and new side by side).

import { gcfsVersion } from '@gcfs/core';
import { Gauge, type Registry } from 'prom-client';

export function registerBuildInfo(registry: Registry): void {
  const { version, commit } = gcfsVersion();
  new Gauge({
    name: 'gcfs_build_info',
    help: 'Always 1: the version of gcfs this process runs and the git commit it was built from',
    labelNames: ['version', 'commit'] as const,
    registers: [registry],
  }).set({ version, commit }, 1);
}
