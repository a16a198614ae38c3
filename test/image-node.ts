// The parts of test/image-node.test.ts: gcfs's image built and pushed by scripts/build-image,
// the workload it streams, and what the test looks at on the host (mounts, a containerd's
// content store, the registry's manifest, the metrics port).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GcfsError } from '@gcfs/core';
import { busyboxEntries, type ImageSpec } from '@gcfs/image-builder';
import { curl, type RunningContainerd } from '@gcfs/testkit';
import { dir, file } from './cri-images.js';
import { ROOT } from './deploy-manifests.js';
import { eventually } from './streaming-stack.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GRPC_UNAVAILABLE = 14;
/** gcfsd's --port and the downloader's in the DaemonSet (the probes' and the preStop's). */
export const GCFSD_PORT = 11253;
export const DOWNLOADER_PORT = 11254;
export const BLOB = { size: 6 * MiB, seed: 'image-node-blob' };

/**
 * Above gcfsd's default --min_streamed_image_size_mb (4 MiB, kept as the DaemonSet leaves it):
 * streamed. Its second layer has a whiteout and an opaque dir, which the downloader container
 * writes with only its capabilities (mknod, trusted.* xattrs).
 */
export const WORKLOAD: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    {
      entries: [
        ...busyboxEntries(),
        dir('data'),
        file('data/early.txt', 'read before the rollout\n'),
        file('data/late.txt', 'first read after the rollout\n'),
        file('data/gone.txt', 'deleted by the next layer\n'),
        file('data/blob', BLOB),
        dir('opaque'),
        file('opaque/old.txt', 'hidden\n'),
      ],
    },
    {
      entries: [
        { type: 'whiteout', path: 'data/gone.txt' },
        dir('opaque'),
        { type: 'opaque', path: 'opaque' },
        file('opaque/new.txt', 'new\n'),
        dir('app'),
        file('app/message', 'streamed hello\n'),
      ],
    },
  ],
};

/** Build the image (or reuse the cached build) and push it; the pushed reference by tag. */
export async function buildAndPushImage(
  registryHost: string,
): Promise<{ ref: string; version: string; revision: string }> {
  const args = ['scripts/build-image.mjs', '--json', '--push', `${registryHost}/gcfs/gcfs`];
  const { stdout } = await run(process.execPath, args, { cwd: ROOT, maxBuffer: 64 * MiB }).catch(
    (err: { stderr?: string }) => assert.fail(`scripts/build-image failed:\n${err.stderr?.slice(-4000)}`),
  );
  const built = JSON.parse(stdout) as { version: string; pushed: string; labels: Record<string, string> };
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const head = (await run('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
  assert.equal(built.version, version);
  assert.equal(built.labels['org.opencontainers.image.version'], version);
  assert.match(built.labels['org.opencontainers.image.revision'] ?? '', new RegExp(`^${head}(-dirty)?$`));
  assert.ok(built.labels['org.opencontainers.image.source']);
  assert.ok(!Number.isNaN(Date.parse(built.labels['org.opencontainers.image.created'] ?? '')));
  assert.match(built.pushed, new RegExp(`^${registryHost}/gcfs/gcfs:${version}@sha256:[0-9a-f]{64}$`));
  return {
    ref: built.pushed.split('@')[0]!,
    version: built.version,
    revision: built.labels['org.opencontainers.image.revision']!,
  };
}

/** Mount `path` on itself, shared: a node's / is (systemd), and CRI's propagation needs it. */
export async function sharedBind(path: string): Promise<void> {
  await run('mount', ['--bind', path, path]);
  await run('mount', ['--make-rshared', path]);
}

export async function mountsUnder(path: string): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === path || point.startsWith(`${path}/`));
}

export async function probe(port: number, path: string): Promise<number> {
  const url = `http://127.0.0.1:${port}${path}`;
  return (await curl(['-sS', '--max-time', '5', url]).catch(() => ({ status: 0 }))).status;
}

/**
 * `call` retried on UNAVAILABLE, as kubelet retries: containerd dials the proxy snapshotter
 * with a backoff, so a socket that was missing (before gcfsd's first start, during its
 * replacement) is reached again only some seconds after it is back.
 */
export function retried<T>(what: string, call: () => Promise<T>): Promise<T> {
  return eventually(
    what,
    () =>
      call().catch((err: GcfsError) => {
        if (err.details?.grpcCode === GRPC_UNAVAILABLE) return undefined;
        throw err;
      }),
    60_000,
  );
}

/** Layer blobs in a containerd's content store. */
export async function contentBlobs(containerd: RunningContainerd): Promise<string[]> {
  return readdir(join(containerd.rootDir, 'io.containerd.content.v1.content/blobs/sha256')).catch(() => []);
}

/** The layer digests of an image's manifest in the registry. */
export async function registryLayers(host: string, repository: string): Promise<string[]> {
  const response = await curl([
    '-sS',
    '-H',
    'Accept: application/vnd.oci.image.manifest.v1+json',
    `http://${host}/v2/${repository}/manifests/v1`,
  ]);
  const manifest = JSON.parse(response.body.toString()) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

/** `registryHost` over plain HTTP, as containerd's `<hostsDir>/<host>/hosts.toml` (gcfs reads it too). */
export async function writeRegistryHosts(hostsDir: string, registryHost: string): Promise<void> {
  const dir = join(hostsDir, registryHost);
  await mkdir(dir, { recursive: true });
  const url = `http://${registryHost}`;
  await writeFile(
    join(dir, 'hosts.toml'),
    `server = "${url}"\n[host."${url}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
}
