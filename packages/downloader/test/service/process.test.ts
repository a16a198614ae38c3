// The real `gcfsd --downloader` executable: crash safety under kill -9, logs, SIGTERM, socket.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { layerDirName, UNTAR_DIR_PREFIX } from '@gcfs/core';
import type { Entry } from '@gcfs/image-builder';
import {
  type AfterHook,
  asNobody,
  connectAsNobody,
  diffTrees,
  type ManagedProcess,
  ManagedProcess as Process,
  snapshotTree,
  startProcess,
  type TreeSnapshot,
  tempDirFor,
} from '@gcfs/testkit';
import { DownloaderClient } from '../../src/index.js';
import { ALICE, type PushedImage, privateRegistry, pushBuilt, referenceTree, requestFor } from './harness.js';

// dist/test/service/*.js → packages/gcfsd/bin/gcfsd (built by the root `tsc -b`).
const GCFSD_BIN = fileURLToPath(new URL('../../../../gcfsd/bin/gcfsd', import.meta.url));
const TRIALS = 20;

/** ~40 MiB in 1000 files: long enough to untar that a kill lands in the middle. */
const FILE_COUNT = 1000;
const MANY_FILES: Entry[] = [
  { type: 'dir', path: 'data', mode: 0o755 },
  ...Array.from(
    { length: FILE_COUNT },
    (_, i): Entry => ({
      type: 'file',
      path: `data/${String(i).padStart(4, '0')}.bin`,
      mode: 0o644,
      content: { size: 40 * 1024, seed: `f${i}` },
    }),
  ),
];

interface Setup {
  pushed: PushedImage;
  cacheDir: string;
  socketPath: string;
  reference: TreeSnapshot;
}

async function setUp(t: AfterHook, repository: string): Promise<Setup> {
  const registry = await privateRegistry(t);
  const pushed = await pushBuilt(t, registry, repository, {
    layers: [{ compression: 'gzip', entries: MANY_FILES }],
  });
  const dir = await tempDirFor(t, 'gcfs-dl-proc-');
  return {
    pushed,
    cacheDir: join(dir.path, 'cache'),
    socketPath: join(dir.path, 'run', 'downloader.sock'),
    reference: await referenceTree(t, pushed.layers[0]!),
  };
}

function startGcfsd(t: AfterHook, setup: Setup, extra: string[] = []): Promise<ManagedProcess> {
  const started = startProcess({
    name: 'gcfsd --downloader',
    command: GCFSD_BIN,
    args: [
      '--downloader',
      `--downloader_uds_path=${setup.socketPath}`,
      `--layer_cache_dir=${setup.cacheDir}`,
      '--insecure_registry=127.0.0.1',
      '--max_layer_downloads=2',
      ...extra,
    ],
    ready: { logLine: /Layer downloader serving/ },
  });
  started.then(
    (child) => t.after(() => child.stop()),
    () => {},
  );
  return started;
}

/** Files of the layer unpacked so far; once the dir is renamed away, all of them. */
async function filesWritten(untarDir: string): Promise<number> {
  try {
    return (await readdir(join(untarDir, 'data'))).length;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function connect(t: AfterHook, setup: Setup): DownloaderClient {
  const client = new DownloaderClient(setup.socketPath);
  t.after(() => client.close());
  return client;
}

async function assertPublishedLayer(setup: Setup, what: string): Promise<void> {
  const layerDir = requestFor(setup.cacheDir, setup.pushed.image, setup.pushed.layers[0]!).layerDir;
  assert.deepEqual(diffTrees(await snapshotTree(layerDir), setup.reference), [], what);
}

test(`kill -9 of gcfsd --downloader at random points of the untar (${TRIALS} trials): never a partial layer, a retry succeeds`, async (t) => {
  const setup = await setUp(t, 'private/crash');
  const layer = setup.pushed.layers[0]!;
  const request = requestFor(setup.cacheDir, setup.pushed.image, layer, ALICE);

  let child: ManagedProcess;
  let killedMidway = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    await rm(request.layerDir, { recursive: true, force: true });
    child = await startGcfsd(t, setup);
    const client = connect(t, setup);
    let settled = false;
    const download = client.download(request).then(
      (outcome) => {
        settled = true;
        return outcome;
      },
      () => undefined,
    );
    while (!existsSync(request.untarDir) && !existsSync(request.layerDir)) {
      if (settled)
        assert.fail(
          `trial ${trial}: the download ended without untarring: ${JSON.stringify(await download)}`,
        );
      await delay(1);
    }
    // The kill lands once a random number of the files are written; past the last file it
    // lands while the tree is synced and renamed, or after.
    const target = Math.floor(Math.random() * (FILE_COUNT + 50));
    while (!settled && (await filesWritten(request.untarDir)) < target) await delay(1);
    process.kill(child.pid!, 'SIGKILL');
    assert.equal((await child.waitForExit()).signal, 'SIGKILL');
    await download;
    client.close();

    // Whatever the moment, a layer dir is there whole or not at all.
    const names = await readdir(setup.cacheDir);
    if (names.includes(layerDirName(layer.digest))) await assertPublishedLayer(setup, `trial ${trial}`);
    else killedMidway += 1;
    assert.ok((await lstat(setup.socketPath)).isSocket(), 'the dead process left its socket');

    // The restart replaces the stale socket, removes the leftovers; a retry completes the layer.
    child = await startGcfsd(t, setup);
    assert.deepEqual(
      (await readdir(setup.cacheDir)).filter((name) => name.startsWith(UNTAR_DIR_PREFIX)),
      [],
      `trial ${trial}: untar_* removed at start`,
    );
    const retried = await connect(t, setup).download(request);
    assert.equal(retried.succeeded, true, retried.errorReason);
    await assertPublishedLayer(setup, `trial ${trial} retry`);
    await child.stop();
  }
  assert.ok(killedMidway >= TRIALS / 2, `only ${killedMidway} kills landed before the layer was published`);
});

test('gcfsd --downloader logs as GKE does, never the pull secret; SIGTERM exits 0 and removes the socket', async (t) => {
  const setup = await setUp(t, 'private/logs');
  const layer = setup.pushed.layers[0]!;
  const request = requestFor(setup.cacheDir, setup.pushed.image, layer, ALICE);
  const child = await startGcfsd(t, setup);
  assert.match(child.output(), /msg="Detected 0 existing layers in cacheDir" module=layercache/);
  assert.equal((await stat(setup.socketPath)).mode & 0o777, 0o600);
  assert.equal((await stat(join(setup.socketPath, '..'))).mode & 0o777, 0o700);

  const outcome = await connect(t, setup).download(request);
  assert.equal(outcome.succeeded, true, outcome.errorReason);
  const logs = child.output();
  const layerDirField = `cached_layer_dir=${JSON.stringify(request.layerDir)}`;
  assert.match(logs, /level=info msg="Starting layer download\/unpack" .*module=layercache/);
  assert.ok(logs.includes(layerDirField) && logs.includes(`layer_id=${JSON.stringify(layer.digest)}`));
  assert.match(logs, /msg="Layer untar succeeded" module=download size=\d+ untar_dir=/);
  assert.match(logs, /msg="downloader responded OK \(succeeded=true, hasMismatchedHash=false\)"/);
  assert.ok(logs.includes('pull_secret:\\"(redacted)\\"'), logs);
  assert.ok(!logs.includes(ALICE.password), 'the password reached the log');

  process.kill(child.pid!, 'SIGTERM');
  assert.deepEqual(await child.waitForExit(), { code: 0, signal: null });
  assert.ok(!existsSync(setup.socketPath), 'socket removed at exit');

  const again = await startGcfsd(t, setup, ['--log_formatter=json']);
  assert.match(again.output(), /"msg":"Detected 1 existing layers in cacheDir"/);
});

test('gcfsd --downloader refuses to start over a file that is not a socket, and beside a live downloader', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-dl-sock-');
  const setup = { cacheDir: join(dir.path, 'cache'), socketPath: join(dir.path, 'downloader.sock') } as Setup;
  await writeFile(setup.socketPath, 'not a socket');
  const refused = new Process({
    name: 'gcfsd --downloader',
    command: GCFSD_BIN,
    args: [
      '--downloader',
      `--downloader_uds_path=${setup.socketPath}`,
      `--layer_cache_dir=${setup.cacheDir}`,
    ],
  });
  assert.equal((await refused.waitForExit()).code, 1);
  assert.match(refused.output(), /level=fatal .*is not a socket/);

  await rm(setup.socketPath);
  await startGcfsd(t, setup);
  const second = new Process({
    name: 'second gcfsd --downloader',
    command: GCFSD_BIN,
    args: [
      '--downloader',
      `--downloader_uds_path=${setup.socketPath}`,
      `--layer_cache_dir=${setup.cacheDir}`,
    ],
  });
  assert.equal((await second.waitForExit()).code, 1);
  assert.match(second.output(), /another process is serving/);
  assert.ok((await lstat(setup.socketPath)).isSocket(), 'the live socket was left alone');
});

test('gcfsd --downloader started first, with a 0 umask and 0755 dirs made beforehand (RuntimeDirectory=, hostPath): both tightened to 0700 and logged; nobody cannot list the cache or connect', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-dl-modes-');
  await chmod(dir.path, 0o755); // a world-traversable place, as /run and /var/lib are
  const setup = {
    cacheDir: join(dir.path, 'cache'),
    socketPath: join(dir.path, 'run', 'downloader.sock'),
  } as Setup;
  for (const path of [setup.cacheDir, join(dir.path, 'run')]) {
    await mkdir(path);
    await chmod(path, 0o755);
  }
  const umask = process.umask(0);
  let child: ManagedProcess;
  try {
    child = await startGcfsd(t, setup);
  } finally {
    process.umask(umask);
  }
  for (const path of [setup.cacheDir, join(dir.path, 'run')]) {
    assert.equal((await stat(path)).mode & 0o7777, 0o700, path);
    assert.match(child.output(), new RegExp(`Tightened permissions of ${path} from 0755 to 0700`));
  }
  assert.equal((await stat(setup.socketPath)).mode & 0o7777, 0o600);
  const listing = await asNobody('ls', setup.cacheDir);
  assert.equal(listing.ok, false);
  assert.match(listing.output, /Permission denied/);
  assert.equal(await connectAsNobody(setup.socketPath), 'EACCES');
});
