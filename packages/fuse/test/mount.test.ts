import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { layerDirName } from '@gcfs/core';
import { makeTempDir } from '@gcfs/testkit';
import { cleanStaleMount, mountGcfs } from '../src/index.js';
import { fixture, mountFixture, sh } from './harness.js';
import { LAYERED } from './images.js';

const SERVE = `import('@gcfs/fuse').then(async ({ mountGcfs }) => {
  await mountGcfs({ mountPoint: process.argv[1] });
  process.stdout.write('mounted\\n');
  setInterval(() => {}, 1000);
});`;

test('a mount left by a killed server is cleaned up, and the next mount at the path works', async (t) => {
  const dir = await makeTempDir('gcfs-fuse-stale-');
  const mnt = join(dir.path, 'mnt');
  await mkdir(mnt);
  const child = spawn(process.execPath, ['-e', SERVE, mnt], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(async () => {
    child.kill('SIGKILL');
    await cleanStaleMount(mnt);
    await dir.cleanup();
  });
  await new Promise<void>((ready, fail) => {
    child.stdout.on('data', (data: Buffer) => data.toString().includes('mounted') && ready());
    child.on('exit', () => fail(new Error('the serving child exited')));
  });
  assert.match((await sh(`ls '${mnt}'`)).stdout, /images/);
  child.kill('SIGKILL');
  await new Promise((exited) => child.once('exit', exited));
  await assert.rejects(sh(`ls '${mnt}'`, 30_000), /Transport endpoint is not connected/);

  const mount = await mountGcfs({ mountPoint: mnt });
  t.after(() => mount.unmount().catch(() => {}));
  assert.deepEqual((await sh(`ls '${mnt}'`)).stdout.split('\n').filter(Boolean), ['images', 'layers']);
  await mount.unmount();
  assert.equal(await cleanStaleMount(mnt), false);
});

test('with failOnMaxReadBlocks, a read needing more blocks than maxReadBlocks fails with EIO', async (t) => {
  const fx = await fixture(t, LAYERED);
  const { mnt } = await mountFixture(t, fx, { content: { maxReadBlocks: 1, failOnMaxReadBlocks: true } });
  const big = join(mnt, 'layers', layerDirName(fx.layers[1]!), 'big');
  // Direct I/O, so that each read is one FUSE request: the kernel would retry a failed
  // buffered readahead page by page. A 4 KiB read needs one block; a 128 KiB read, eight.
  await sh(`dd if='${big}' of=/dev/null bs=4k count=1 iflag=direct`);
  await assert.rejects(
    sh(`dd if='${big}' of=/dev/null bs=128k count=1 skip=1 iflag=direct`),
    /Input\/output error/,
  );
});

/** The read-ahead the kernel gives the FUSE mount at `mnt`, in KiB, once it is initialized. */
async function readAheadKb(mnt: string): Promise<number> {
  // The first request waits for FUSE's INIT, which sets the read-ahead.
  await sh(`ls '${mnt}'`);
  const line = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .find((entry) => entry.split(' ')[4] === mnt);
  const device = line?.split(' ')[2];
  assert.ok(device, `${mnt} is not mounted`);
  return Number((await readFile(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8')).trim());
}

test("maxReadAhead of 0 or less keeps the kernel's read-ahead; a positive one sets the mount's", async (t) => {
  const dir = await makeTempDir('gcfs-fuse-readahead-');
  const mnt = join(dir.path, 'mnt');
  t.after(async () => {
    await cleanStaleMount(mnt);
    await dir.cleanup();
  });
  const readAheadWith = async (maxReadAhead: number) => {
    const mount = await mountGcfs({ mountPoint: mnt, maxReadAhead });
    try {
      return await readAheadKb(mnt);
    } finally {
      await mount.unmount();
    }
  };
  // VM_READAHEAD_PAGES: what the kernel gives a FUSE mount that asks for no limit.
  const KERNEL_DEFAULT_KB = 128;
  assert.equal(await readAheadWith(0), KERNEL_DEFAULT_KB);
  assert.equal(await readAheadWith(-1), KERNEL_DEFAULT_KB);
  assert.equal(await readAheadWith(16 * 1024), 16);
});
