// A real token-auth registry with a pushed image, and a real cfsd serving it, for the
// client's integration suite. cfsd can be stopped and started again on the same port.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { type CfsdOptions, type RunningCfsd, startCfsd } from '@gcfs/cfsd';
import { buildImage, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { type AfterHook, startRegistry, tempDirFor } from '@gcfs/testkit';
import { CfsdClient, type CfsdClientOptions } from '../src/index.js';

export const ALICE = { username: 'alice', password: 'alice-cfsd-client-pw' };
export const BOB = { username: 'bob', password: 'bob-cfsd-client-pw' };
/** Small blocks so that files span several of them. */
export const BLOCK_SIZE = 16 * 1024;

/** Path → content of every regular file of the image, across its layers. */
export type Files = Map<string, Buffer>;

export function imageSpec(): { spec: ImageSpec; files: Files } {
  const files: Files = new Map([
    ['etc/hello.txt', Buffer.from('hello from cfsd\n')],
    ['bin/random', randomBytes(5 * BLOCK_SIZE + 123)],
    ['usr/share/zeros', Buffer.alloc(3 * BLOCK_SIZE, 0)],
    ['empty', Buffer.alloc(0)],
    ['usr/lib/edge', randomBytes(BLOCK_SIZE)],
  ]);
  const entry = (path: string) => ({ type: 'file' as const, path, content: files.get(path)! });
  const spec: ImageSpec = {
    layers: [
      {
        compression: 'gzip',
        entries: [
          { type: 'dir', path: 'etc' },
          entry('etc/hello.txt'),
          { type: 'dir', path: 'bin' },
          entry('bin/random'),
          { type: 'symlink', path: 'bin/sh', target: 'random' },
        ],
      },
      {
        compression: 'zstd',
        entries: [
          { type: 'dir', path: 'usr' },
          { type: 'dir', path: 'usr/share' },
          entry('usr/share/zeros'),
          entry('empty'),
          { type: 'dir', path: 'usr/lib' },
          entry('usr/lib/edge'),
        ],
      },
    ],
  };
  return { spec, files };
}

/** A port nothing listens on right now, for a cfsd that starts later. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Fixture {
  image: string;
  files: Files;
  layers: string[];
  /** Start (or start again) cfsd on the fixture's port and store. */
  start(options?: Partial<CfsdOptions>): Promise<RunningCfsd>;
  /** The running cfsd. */
  cfsd(): RunningCfsd;
  stop(): Promise<void>;
  client(options?: Partial<CfsdClientOptions>): CfsdClient;
}

export async function fixture(t: AfterHook): Promise<Fixture> {
  const registry = await startRegistry({
    auth: 'token',
    users: [ALICE, BOB],
    acl: { 'private/*': { pull: ['alice'], push: ['alice'] } },
  });
  t.after(() => registry.stop());
  const layout = await tempDirFor(t, 'gcfs-client-layout-');
  const { spec, files } = imageSpec();
  const built = await buildImage(spec, { layoutDir: layout.path });
  const pusher = new RegistryClient({
    insecureHosts: ['127.0.0.1'],
    credentials: { [registry.host]: ALICE },
  });
  await pushImage(pusher, built, { registry: registry.host, repository: 'private/app', tag: 'v1' });
  await pusher.close();

  const store = await tempDirFor(t, 'gcfs-client-store-');
  const port = await freePort();
  let running: RunningCfsd | undefined;
  const stop = async () => {
    await running?.stop(100);
    running = undefined;
  };
  t.after(stop);
  return {
    image: `${registry.host}/private/app:v1`,
    files,
    layers: built.layers.map((layer) => layer.descriptor.digest),
    async start(options = {}) {
      running = await startCfsd({
        listen: `127.0.0.1:${port}`,
        store: `file://${store.path}`,
        registry: { insecureHosts: ['127.0.0.1'] },
        blockSize: BLOCK_SIZE,
        ...options,
      });
      return running;
    },
    cfsd: () => running!,
    stop,
    client(options = {}) {
      const client = new CfsdClient({
        address: `127.0.0.1:${port}`,
        retry: { maxAttempts: 100, backoff: { initialMs: 20, maxMs: 200 } },
        authImageRetryIntervalMs: 50,
        ...options,
      });
      t.after(() => client.close());
      return client;
    },
  };
}
