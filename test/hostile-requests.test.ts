// Issue 11, section 2: failing requests are answers, never a crash. Each daemon of a real
// node (cfsd, the downloader, gcfsd's admin and snapshotter sockets) gets a mix of failing
// requests and garbage connections at once, then must still be running and serve.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { type TestContext, test } from 'node:test';
import type { downloader } from '@gcfs/proto';
import { startGcfsStack, startRegistry } from '@gcfs/testkit';
import {
  DAEMONS,
  DaemonClients,
  downloadRequest,
  fireAll,
  hostileProbes,
  type Targets,
  validProbes,
} from './hostile-clients.js';
import { pushLayeredImage } from './pushed-layers.js';

async function node(t: TestContext) {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const pushed = await pushLayeredImage(t, registry.host, 'hostile/target', [
    Array.from({ length: 20 }, (_, i) => ({ path: `good/${i}`, size: 100_000 + i })),
  ]);
  // An image whose layer blob no longer matches its digest (same size).
  const tampered = await pushLayeredImage(t, registry.host, 'hostile/tampered', [
    [{ path: 'tampered/data', size: 300_000 }],
  ]);
  const blobPath = registry.blobDataPath(tampered.layers[0]!.digest);
  const blob = await readFile(blobPath);
  blob[blob.length >> 1]! ^= 0xff;
  await writeFile(blobPath, blob);
  const stack = await startGcfsStack({ insecureRegistry: '127.0.0.1' });
  t.after(() => stack.stop());
  const targets: Targets = {
    registryHost: registry.host,
    cfsdAddress: stack.cfsdAddress,
    downloaderSocket: stack.downloaderSocket,
    cacheDir: stack.cacheDir,
    adminSocket: stack.adminSocket,
    snapshotterSocket: stack.snapshotterSocket,
    image: pushed.image,
    layer: pushed.layers[0]!,
  };
  const clients = new DaemonClients(targets);
  t.after(() => clients.close());
  return { pushed, tampered, stack, targets, clients };
}

test('every daemon answers a mix of failing requests and garbage connections fired at once, and still serves', async (t) => {
  const { tampered, stack, targets, clients } = await node(t);

  const probes = hostileProbes(targets, clients);
  const valid = validProbes(targets, clients);
  for (const daemon of DAEMONS) {
    await t.test(daemon, async () => {
      // Twice each, all at once: the same failing layer asked while it is failing, too.
      const answers = await fireAll([...probes[daemon], ...probes[daemon]]);
      assert.equal(answers.length, probes[daemon].length * 2);
      assert.deepEqual(stack.exited(), {}, `after the probes of ${daemon}: ${JSON.stringify(answers)}`);
      assert.equal(await valid[daemon](), 'ok', daemon);
    });
  }
  await t.test('a mismatched digest is an answer saying so', async () => {
    const outcome = await new Promise<downloader.DownloadResponse>((resolve, reject) =>
      clients.downloader.download(
        downloadRequest(stack.cacheDir, tampered.image, tampered.layers[0]!),
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
    assert.equal(outcome.succeeded, false);
    assert.equal(outcome.hasMismatchedHash, true, outcome.errorReason);
  });
  assert.deepEqual(stack.exited(), {});
  const logs = await stack.logs();
  for (const [name, text] of Object.entries(logs)) {
    assert.ok(!/Unhandled|uncaught/i.test(text), `${name} logged an unhandled error:\n${text.slice(-4000)}`);
  }
});
