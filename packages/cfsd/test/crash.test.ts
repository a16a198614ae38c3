import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { seededSha256 } from '@gcfs/image-builder';
import { containerfs as pb } from '@gcfs/proto';
import { freePort, startProcess, tempDirFor } from '@gcfs/testkit';
import { ALICE, connect, privateRegistry, pushBuilt, readContent, runCfsd } from './harness.js';

const CFSD_BIN = fileURLToPath(new URL('../../bin/cfsd', import.meta.url));
const BIG = { size: 96 << 20, seed: 'crash' };

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

test('kill -9 of cfsd while indexing leaves no half index; the next start indexes it whole', async (t) => {
  const registry = await privateRegistry(t);
  const { image } = await pushBuilt(t, registry, 'private/crash', {
    layers: [{ compression: 'gzip', entries: [{ type: 'file', path: 'big.bin', content: BIG }] }],
  });
  const store = await tempDirFor(t, 'gcfs-crash-store-');
  const port = await freePort();
  const child = await startProcess({
    name: 'cfsd',
    command: CFSD_BIN,
    args: [
      `--listen=127.0.0.1:${port}`,
      `--store=file://${store.path}`,
      '--insecure_registry=127.0.0.1',
      '--metrics_listen=',
      '--block_size_kb=64',
    ],
    ready: { logLine: /cfsd serving/ },
  });
  t.after(() => child.stop());
  const client = connect(t, { address: `127.0.0.1:${port}` });
  const started = await client.authImage({ image, credentials: ALICE });
  assert.equal(started.status, pb.ImageStatus.IMAGE_STATUS_INDEXING);

  // Kill it once blocks are being written, well before the layer can be complete.
  const deadline = Date.now() + 60_000;
  while ((await filesUnder(join(store.path, 'tmp'))).length === 0) {
    assert.ok(Date.now() < deadline, 'indexing never started writing');
    await delay(20);
  }
  process.kill(child.pid!, 'SIGKILL');
  const exit = await child.waitForExit();
  assert.equal(exit.signal, 'SIGKILL');
  assert.deepEqual(await filesUnder(join(store.path, 'layers')), [], 'no layer visible after the crash');

  const { client: fresh } = await runCfsd(t, { storeDir: store.path, blockSize: 64 * 1024 });
  assert.deepEqual(await filesUnder(join(store.path, 'tmp')), [], 'leftovers removed at start');
  const auth = await fresh.authImage({ image, credentials: ALICE, wait: true });
  assert.equal(auth.status, pb.ImageStatus.IMAGE_STATUS_READY, auth.notStreamableReason);
  const layer = auth.layers[0]!;
  const entry = (await fresh.layerIndex(auth.sessionToken, layer.digest)).entries.find(
    (e) => e.name === 'big.bin',
  )!;
  const content = await readContent(
    fresh,
    auth.sessionToken,
    layer.digest,
    layer.blockSize,
    entry.contentOffset,
    entry.size,
  );
  assert.equal(createHash('sha256').update(content).digest('hex'), await seededSha256(BIG));
});
