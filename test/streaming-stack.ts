// The node of the end-to-end tests: a registry, cfsd, gcfsd (+ downloader) and containerd
// configured as GKE configures it (CRI snapshotter "gcfs" through the proxy plugin,
// snapshot annotations on, unpacked layers discarded), driven through CRI as kubelet does.

import { execFile } from 'node:child_process';
import { readdir, readlink } from 'node:fs/promises';
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
  readCriLog,
  startContainerd,
  startGcfsStack,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { PAUSE_IMAGE, pushTestImage } from './cri-images.js';

const execFileAsync = promisify(execFile);
const GRPC_UNAVAILABLE = 14;

export async function streamingNode(
  t: TestContext,
  images: Record<string, ImageSpec>,
  options: Pick<GcfsStackOptions, 'downloader' | 'gcfsdFlags' | 'dir' | 'minStreamedImageMb'> &
    Pick<ContainerdOptions, 'snapshotAnnotations'> = {},
) {
  const registry = await startRegistry();
  const sandboxImage = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE);
  const refs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(images))
    refs[name] = await pushTestImage(registry.host, name, spec);
  const { snapshotAnnotations, ...stackOptions } = options;
  const stack = await startGcfsStack({ insecureRegistry: '127.0.0.1', ...stackOptions });
  let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  let client: CriClient | undefined;
  // One hook, in this order: containers and their overlay mounts go before gcfsd's FUSE mount.
  t.after(async () => {
    client?.close();
    await containerd?.stop();
    await stack.stop();
    await registry.stop();
  });
  containerd = await startContainerd({
    registryHost: registry.host,
    sandboxImage,
    snapshotter: 'gcfs',
    proxySnapshotters: { gcfs: stack.snapshotterSocket },
    discardUnpackedLayers: true,
    snapshotAnnotations,
  });
  client = new CriClient(containerd.address);
  const logs = await tempDirFor(t, 'gcfs-e2e-logs-');
  const cri = client;
  const node = containerd;

  return {
    registry,
    stack,
    containerd: node,
    cri,
    refs,
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
