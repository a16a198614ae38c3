// The node the hostile tests run against: a registry, cfsd, gcfsd with its FUSE mount, its
// keychain and the downloader (testkit's stack), with two images of seeded files pushed: a plain one, and
// one cfsd indexed before its blob in the registry was damaged, so that it streams and its
// download fails with a digest mismatch (its layer is served by FUSE from cfsd for good).

import { readFile, writeFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { buildImage, type Entry, pushImage, seededSha256 } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { startGcfsStack, startRegistry, tempDirFor } from '@gcfs/testkit';
import { DaemonClients, type Targets, validProbes } from './daemon-probes.js';

export interface SeededFile {
  path: string;
  size: number;
}

export interface PushedLayers {
  /** `host/repository:v1` */
  image: string;
  layers: Array<{ digest: string; mediaType: string; size: number; sha256: Map<string, string> }>;
}

/** One gzip layer per list of files (content seeded by path); pushed as `repository:v1`. */
export async function pushLayeredImage(
  t: TestContext,
  host: string,
  repository: string,
  layers: readonly (readonly SeededFile[])[],
): Promise<PushedLayers> {
  const layout = await tempDirFor(t, 'gcfs-layers-');
  const spec = layers.map((files) => {
    const dirs = new Set(
      files.flatMap((f) => (f.path.includes('/') ? [f.path.slice(0, f.path.lastIndexOf('/'))] : [])),
    );
    const entries: Entry[] = [
      ...[...dirs].map((path): Entry => ({ type: 'dir', path, mode: 0o755 })),
      ...files.map(
        (f): Entry => ({ type: 'file', path: f.path, mode: 0o644, content: { size: f.size, seed: f.path } }),
      ),
    ];
    return { compression: 'gzip' as const, entries };
  });
  const built = await buildImage({ layers: spec }, { layoutDir: layout.path, gzipLevel: 1 });
  const pusher = new RegistryClient({ insecureHosts: [host] });
  try {
    await pushImage(pusher, built, { registry: host, repository, tag: 'v1' });
  } finally {
    await pusher.close();
  }
  return {
    image: `${host}/${repository}:v1`,
    layers: await Promise.all(
      built.layers.map(async (layer, i) => ({
        digest: layer.descriptor.digest,
        mediaType: layer.descriptor.mediaType,
        size: layer.descriptor.size,
        sha256: new Map(
          await Promise.all(
            layers[i]!.map(
              async (f) => [f.path, await seededSha256({ size: f.size, seed: f.path })] as const,
            ),
          ),
        ),
      })),
    ),
  };
}

/** The node, its hostile targets (the plain image) and a client of each daemon. */
export async function hostileNode(t: TestContext, streamedFiles: readonly SeededFile[]) {
  const registry = await startRegistry();
  let stack: Awaited<ReturnType<typeof startGcfsStack>> | undefined;
  let clients: DaemonClients | undefined;
  t.after(async () => {
    clients?.close();
    await stack?.stop();
    await registry.stop();
  });
  const plain = await pushLayeredImage(t, registry.host, 'hostile/plain', [
    Array.from({ length: 20 }, (_, i) => ({ path: `plain/${i}`, size: 100_000 + i })),
  ]);
  const streamed = await pushLayeredImage(t, registry.host, 'hostile/streamed', [streamedFiles]);
  // No containerd behind the keychain: what it forwards fails with UNAVAILABLE.
  stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1',
    keychain: { containerdAddress: '/nonexistent/containerd.sock' },
  });
  const targets: Targets = {
    registryHost: registry.host,
    cfsdAddress: stack.cfsdAddress,
    downloaderSocket: stack.downloaderSocket,
    cacheDir: stack.cacheDir,
    adminSocket: stack.adminSocket,
    snapshotterSocket: stack.snapshotterSocket,
    keychainSocket: stack.keychainSocket,
    image: plain.image,
    layer: plain.layers[0]!,
    damaged: { image: streamed.image, layer: streamed.layers[0]! },
  };
  clients = new DaemonClients(targets);
  const indexed = await validProbes({ ...targets, image: streamed.image }, clients).cfsd();
  if (indexed !== 'ok') throw new Error(`cfsd did not index ${streamed.image}: ${indexed}`);
  const blobPath = registry.blobDataPath(streamed.layers[0]!.digest);
  const blob = await readFile(blobPath);
  blob[blob.length >> 1]! ^= 0xff;
  await writeFile(blobPath, blob);
  return { stack, targets, clients, streamed };
}
