// The node of the end-to-end tests: a registry, cfsd, gcfsd (+ downloader) and containerd
// configured as GKE configures it (CRI snapshotter "gcfs" through the proxy plugin,
// snapshot annotations on, unpacked layers discarded), driven through CRI as kubelet does.

import { execFile } from 'node:child_process';
import { readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type GcfsError, imageDirName } from '@gcfs/core';
import type { ImageSpec } from '@gcfs/image-builder';
import {
  type ContainerdOptions,
  CriClient,
  type GcfsStackOptions,
  makeTempDir,
  type RegistryOptions,
  readCriLog,
  startContainerd,
  startGcfsStack,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { PAUSE_IMAGE, pushTestImage } from './cri-images.js';

const execFileAsync = promisify(execFile);
const GRPC_UNAVAILABLE = 14;

export interface StreamingNodeOptions
  extends Pick<GcfsStackOptions, 'downloader' | 'gcfsdFlags' | 'dir' | 'minStreamedImageMb'>,
    Pick<ContainerdOptions, 'snapshotAnnotations'> {
  /** A registry with auth (token, users, ACL); the images are pushed as its first user. */
  registry?: RegistryOptions;
  /**
   * gcfsd's keychain on (`--enable_pull_secret_keychain`), its socket proxying to this node's
   * containerd; gcfsd starts before containerd does, as on a node.
   */
  keychain?: boolean;
}

export async function streamingNode(
  t: TestContext,
  images: Record<string, ImageSpec>,
  options: StreamingNodeOptions = {},
) {
  const registry = await startRegistry(options.registry);
  let links: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let stack: Awaited<ReturnType<typeof startGcfsStack>> | undefined;
  let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  let client: CriClient | undefined;
  let keychainClient: CriClient | undefined;
  // One hook, registered at once, in this order: containers and their overlay mounts go
  // before gcfsd's FUSE mount.
  t.after(async () => {
    client?.close();
    keychainClient?.close();
    await containerd?.stop();
    await stack?.stop();
    await registry.stop();
    await links?.cleanup();
  });
  const pusher = registry.users[0];
  const sandboxImage = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE, 'v1', pusher);
  const refs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(images))
    refs[name] = await pushTestImage(registry.host, name, spec, 'v1', pusher);
  const { snapshotAnnotations, registry: _, keychain, ...stackOptions } = options;
  // containerd's socket is known once it runs: gcfsd is given a link to it, made then.
  links = keychain ? await makeTempDir('gcfs-keychain-') : undefined;
  const containerdLink = links && join(links.path, 'containerd.sock');
  stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1',
    ...stackOptions,
    ...(containerdLink && { keychain: { containerdAddress: containerdLink } }),
  });
  const keychainSocket = keychain ? stack.keychainSocket : undefined;
  containerd = await startContainerd({
    registryHost: registry.host,
    sandboxImage,
    snapshotter: 'gcfs',
    proxySnapshotters: { gcfs: stack.snapshotterSocket },
    discardUnpackedLayers: true,
    snapshotAnnotations,
  });
  if (containerdLink !== undefined) await symlink(containerd.address, containerdLink);
  client = new CriClient(containerd.address);
  if (keychainSocket !== undefined) keychainClient = new CriClient(keychainSocket);
  const logs = await tempDirFor(t, 'gcfs-e2e-logs-');
  const cri = client;
  const node = containerd;

  return {
    registry,
    stack,
    containerd: node,
    cri,
    refs,
    /** With `keychain`: gcfsd's keychain socket, kubelet's --image-service-endpoint. */
    keychainSocket,
    /** With `keychain`: a CRI client on that socket, for image calls as kubelet makes them. */
    keychain: keychainClient,
    logDirectory: logs.path,
    /**
     * Run a container from `image` in `pod` to its end; its log lines. CreateContainer is
     * retried on UNAVAILABLE for a while, as kubelet retries: containerd's connection to a
     * restarted snapshotter comes back only after its gRPC reconnect backoff.
     */
    async run(pod: Parameters<CriClient['createContainer']>[0], name: string, image: string, script: string) {
      const container = await eventually(
        'CreateContainer',
        () =>
          cri
            .createContainer(pod, { name, image, command: ['/bin/sh', '-c', script] })
            .catch((err: unknown) => {
              if ((err as GcfsError).details?.grpcCode === GRPC_UNAVAILABLE) return undefined;
              throw err;
            }),
        30_000,
      );
      await cri.startContainer(container.id);
      const exited = await cri.waitForExit(container.id);
      return { id: container.id, exitCode: exited.exitCode, lines: await readCriLog(container.logFile) };
    },
    /** `ctr` against this containerd, in CRI's namespace. */
    async ctr(...args: string[]): Promise<string> {
      const { stdout } = await execFileAsync('ctr', [
        '--address',
        node.address,
        '--namespace',
        'k8s.io',
        ...args,
      ]);
      return stdout;
    },
    /** Wait until every layer of `repository`'s image links into the layer cache; its links. */
    untilDownloaded(repository: string, timeoutMs = 120_000) {
      return eventually(
        `the layers of ${repository} to be downloaded`,
        async () => {
          const links = await this.imageLinks(repository);
          return links?.links.every((link) => link.startsWith(stack!.cacheDir)) ? links : undefined;
        },
        timeoutMs,
      );
    },
    /** images/<dir> of gcfsd's mount for `repository` (registered by digest) and its links. */
    async imageLinks(repository: string): Promise<{ dir: string; links: string[] } | undefined> {
      const images = join(stack.mountPoint, 'images');
      const entry = (await readdir(images)).find((name) => name.includes(`#${imageDirName(repository)}@`));
      if (entry === undefined) return undefined;
      const dir = join(images, entry);
      const indexes = (await readdir(dir)).map(Number).sort((a, b) => a - b);
      return { dir, links: await Promise.all(indexes.map((i) => readlink(join(dir, String(i))))) };
    },
  };
}

/** Poll `check` until it returns a value other than undefined, for at most `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(250);
  }
}
