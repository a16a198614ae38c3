// Issue 11, section 2: failing requests are answers, never a crash. Each daemon of a real
// node (cfsd, the downloader, gcfsd's admin, snapshotter and keychain sockets) gets a mix of
// failing requests and garbage connections at once, then must still be running and serve.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { downloader } from '@gcfs/proto';
import { DAEMONS, downloadRequest, fireAll, validProbes } from './daemon-probes.js';
import { hostileProbes } from './hostile-clients.js';
import { hostileNode } from './hostile-node.js';

test('every daemon answers a mix of failing requests and garbage connections fired at once, and still serves', async (t) => {
  const { stack, targets, clients } = await hostileNode(t, [{ path: 'data', size: 300_000 }]);

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
        downloadRequest(stack.cacheDir, targets.damaged.image, targets.damaged.layer),
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
