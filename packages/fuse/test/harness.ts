// Shared by the suites: a real registry with a pushed image, a real cfsd (restartable on
// the same port), a client session, and a gcfs mount. The FUSE server runs in the test
// process, so every access to the mount goes through a child process.

import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type RunningCfsd, startCfsd } from '@gcfs/cfsd';
import { CfsdClient, type CfsdClientOptions, type ImageSession } from '@gcfs/cfsd-client';
import { type BuildResult, buildImage, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import {
  type AfterHook,
  makeTempDir,
  startRegistry,
  type TempDir,
  type TreeSnapshot,
  tempDirFor,
} from '@gcfs/testkit';
import { cleanStaleMount, type GcfsMount, type MountOptions, mountGcfs } from '../src/index.js';

const run = promisify(execFile);
/** Small blocks, so that files span several. */
export const BLOCK_SIZE = 16 * 1024;
const PACKAGE_DIR = new URL('../..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

export interface Fixture {
  image: string;
  built: BuildResult;
  layers: string[];
  /** The layer blob in the OCI layout, to extract with GNU tar. */
  blobPath(digest: string): string;
  session: ImageSession;
  /** Start cfsd again (on the same port and store) after stop(). */
  start(): Promise<RunningCfsd>;
  stop(): Promise<void>;
}

/** Build and push `spec`, start cfsd and open a session on the image. */
export async function fixture(
  t: AfterHook,
  spec: ImageSpec,
  clientOptions: Partial<CfsdClientOptions> = {},
): Promise<Fixture> {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layout = await tempDirFor(t, 'gcfs-fuse-layout-');
  const built = await buildImage(spec, { layoutDir: layout.path });
  const pusher = new RegistryClient({ insecureHosts: ['127.0.0.1'] });
  await pushImage(pusher, built, { registry: registry.host, repository: 'fuse/app', tag: 'v1' });
  await pusher.close();

  const store = await tempDirFor(t, 'gcfs-fuse-store-');
  const port = await freePort();
  let running: RunningCfsd | undefined;
  const start = async () => {
    running = await startCfsd({
      listen: `127.0.0.1:${port}`,
      store: `file://${store.path}`,
      registry: { insecureHosts: ['127.0.0.1'] },
      blockSize: BLOCK_SIZE,
    });
    return running;
  };
  const stop = async () => {
    await running?.stop(100);
    running = undefined;
  };
  t.after(stop);
  await start();
  const client = new CfsdClient({
    address: `127.0.0.1:${port}`,
    retry: { maxAttempts: 3, backoff: { initialMs: 20, maxMs: 200 } },
    authImageRetryIntervalMs: 50,
    ...clientOptions,
  });
  t.after(() => client.close());
  const image = `${registry.host}/fuse/app:v1`;
  const session = await client.authImage(image, {}, { wait: true });
  return {
    image,
    built,
    layers: built.layers.map((layer) => layer.descriptor.digest),
    blobPath: (digest) => join(layout.path, 'blobs', ...digest.split(':')),
    session,
    start,
    stop,
  };
}

/** Mount gcfs in a fresh dir, with every layer of the fixture's image added and the image set. */
export async function mountFixture(
  t: AfterHook,
  fx: Fixture,
  options: Partial<MountOptions> = {},
): Promise<{ mount: GcfsMount; dir: TempDir; mnt: string }> {
  const dir = await makeTempDir('gcfs-fuse-mnt-');
  const mnt = join(dir.path, 'mnt');
  await mkdir(mnt);
  let mount: GcfsMount | undefined;
  // One hook, in this order: never remove a directory through a live mount.
  t.after(async () => {
    await mount?.unmount().catch(() => {});
    await cleanStaleMount(mnt);
    await dir.cleanup();
  });
  // Off unless a test asks: the suites observe every read reaching our content path.
  mount = await mountGcfs({ mountPoint: mnt, kernelCache: false, ...options });
  for (const digest of fx.layers) {
    mount.tree.addLayer(digest, { table: await fx.session.layerIndex(digest), remote: fx.session });
  }
  mount.tree.setImage(fx.image, fx.layers);
  return { mount, dir, mnt };
}

/** Run a command in a child process; never touch the mount from this one. */
export async function sh(script: string, timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return run('sh', ['-c', script], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/** snapshotTree of `dir`, taken by a child node process. */
export async function childSnapshot(dir: string): Promise<TreeSnapshot> {
  const script = `import('@gcfs/testkit').then(async ({ snapshotTree }) => {
    process.stdout.write(JSON.stringify([...(await snapshotTree(process.argv[1]))]));
  });`;
  const { stdout } = await run(process.execPath, ['-e', script, dir], {
    cwd: PACKAGE_DIR,
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return new Map(JSON.parse(stdout));
}
