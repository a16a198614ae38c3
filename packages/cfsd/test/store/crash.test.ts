import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, startProcess, tempDirFor } from '@gcfs/testkit';
import { FileStore } from '../../src/store/index.js';
import { assertLayer, seededLayer, writeLayer } from './fixtures.js';

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
const BLOCKS = 24;
const BLOCK_SIZE = 48 * 1024;

/** Where the child is killed: after some block, as its commit starts, or after it committed. */
function killPoint(): RegExp {
  const k = randomInt(-1, BLOCKS + 2);
  if (k === -1) return /begun/;
  if (k < BLOCKS) return new RegExp(`appended ${k}\\n`);
  return k === BLOCKS ? /committing/ : /committed/;
}

async function killWhen(child: ManagedProcess, point: RegExp): Promise<void> {
  await child.waitReady({ logLine: point }, 30_000);
  process.kill(child.pid!, 'SIGKILL');
  await child.waitForExit();
}

test('a writer killed at random points never leaves a partial layer visible', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-crash-');
  const survivors: ReturnType<typeof seededLayer>[] = [];
  for (let trial = 0; trial < 12; trial++) {
    const seed = `trial ${trial} ${randomInt(1 << 30)}`;
    const layer = seededLayer(seed, BLOCKS, BLOCK_SIZE);
    const point = killPoint();
    const child = await startProcess({
      name: `crash-writer ${trial}`,
      command: process.execPath,
      args: [WRITER, dir.path, seed, String(BLOCKS), String(BLOCK_SIZE)],
    });
    t.after(() => child.stop());
    await killWhen(child, point);
    // The writer runs on until SIGKILL lands: judge by what it said last, not by the point
    // the kill was aimed at (under load it may have gone as far as its commit).
    const midWrite = !/commit/.test(child.output());
    if (midWrite) {
      const leftovers = await readdir(join(dir.path, 'tmp'));
      assert.equal(leftovers.length, 1, `trial ${trial}: the half-written layer is in tmp`);
    }

    const store = await FileStore.open(dir.path);
    try {
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [], `trial ${trial}: tmp cleaned`);
      const stored = await store.get(layer.digest);
      if (point.source === 'committed') assert.ok(stored, `trial ${trial}: a committed layer survives`);
      if (midWrite) assert.equal(stored, undefined, `trial ${trial}: not visible before its commit`);
      if (stored === undefined) {
        assert.ok(!(await store.list()).includes(layer.digest));
        await writeLayer(store, layer);
      }
      await assertLayer(store, layer);
      survivors.push(layer);
      for (const earlier of survivors) await assertLayer(store, earlier);
    } catch (err) {
      throw child.failure(`trial ${trial}, killed at ${point}: ${String(err)}`);
    } finally {
      await store.close();
    }
  }
});
