// The probes a DaemonSet points at gcfsd's --port: /healthz (the process answers) and
// /readyz (mount, snapshotter socket and cfsd), against the real gcfsd executable and a real
// cfsd that goes away and comes back on the same address.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startCfsd } from '@gcfs/cfsd';
import { cleanStaleMount } from '@gcfs/fuse';
import { curl, freePort, startProcess, tempDirFor } from '@gcfs/testkit';

const GCFSD_BIN = fileURLToPath(new URL('../../../bin/gcfsd', import.meta.url));

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await curl(['-sS', `http://127.0.0.1:${port}${path}`]);
  return { status: response.status, body: response.body.toString() };
}

/** Poll until the probe answers `status`; the bound only stops a hung suite. */
async function until(port: number, path: string, status: number) {
  let last = await probe(port, path);
  for (let i = 0; i < 300 && last.status !== status; i++) {
    await delay(100);
    last = await probe(port, path);
  }
  return last;
}

test('readiness: /readyz is 200 while mount, snapshotter and cfsd are up, 503 naming cfsd while it is away', async (t) => {
  const dir = await tempDirFor(t, 'gcfsd-readiness-');
  const cfsdPort = await freePort();
  const store = `file://${join(dir.path, 'store')}`;
  let cfsd = await startCfsd({ listen: `127.0.0.1:${cfsdPort}`, store });
  t.after(() => cfsd.stop(100));
  const mnt = join(dir.path, 'run', 'mnt');
  t.after(() => cleanStaleMount(mnt));
  const port = await freePort();
  const gcfsd = await startProcess({
    name: 'gcfsd',
    command: GCFSD_BIN,
    args: [
      `--mount_point=${mnt}`,
      `--addr=127.0.0.1:${cfsdPort}`,
      `--layer_cache_dir=${join(dir.path, 'layers')}`,
      `--downloader_uds_path=${join(dir.path, 'run', 'downloader.sock')}`,
      `--snapshotter_uds_path=${join(dir.path, 'run', 'snapshotter.sock')}`,
      `--snapshotter_root=${join(dir.path, 'snapshotter')}`,
      `--port=${port}`,
      '--gc_period=0',
      '--client_uid=readiness',
      '--event_reporter_type=none',
    ],
    ready: { logLine: /GCFSD: serving/ },
  });
  t.after(() => gcfsd.stop());

  assert.deepEqual(await probe(port, '/healthz'), { status: 200, body: 'ok\n' });
  assert.deepEqual(await until(port, '/readyz', 200), { status: 200, body: 'ok\n' });

  await cfsd.stop(0);
  const away = await until(port, '/readyz', 503);
  assert.equal(away.status, 503);
  assert.match(away.body, /^not ready: cfsd \(--addr\) is not serving: UNAVAILABLE: .+\n$/);
  // Liveness does not depend on cfsd: a restart would not bring it back.
  assert.equal((await probe(port, '/healthz')).status, 200);

  cfsd = await startCfsd({ listen: `127.0.0.1:${cfsdPort}`, store });
  assert.deepEqual(await until(port, '/readyz', 200), { status: 200, body: 'ok\n' });
  assert.equal((await gcfsd.stop()).code, 0, gcfsd.output());
});
