// Shared by the downloader service suites: a real token-auth registry with pushed images, a
// real downloader (in-process or the gcfsd executable) on a Unix socket, and the reference
// tree GNU tar extracts from the same blob.

import { join } from 'node:path';
import { type Digest, digestHex, type LayerCompression } from '@gcfs/core';
import { type BuildResult, buildImage, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import {
  type AfterHook,
  gnuTarExtract,
  type RunningRegistry,
  snapshotTree,
  startRegistry,
  type TreeSnapshot,
  tempDirFor,
} from '@gcfs/testkit';
import {
  DownloaderClient,
  type DownloaderServerOptions,
  type DownloadRequest,
  downloadRequestFor,
  type RunningDownloader,
  startDownloaderServer,
} from '../../src/index.js';
import { overlayView } from '../untar/helpers.js';

export const ALICE = { username: 'alice', password: 'alice-secret-pw', identityToken: '' };

export async function privateRegistry(t: AfterHook): Promise<RunningRegistry> {
  const registry = await startRegistry({
    auth: 'token',
    users: [ALICE],
    acl: { 'private/*': { pull: ['alice'], push: ['alice'] } },
  });
  t.after(() => registry.stop());
  return registry;
}

export interface PushedImage {
  built: BuildResult;
  image: string;
  /** The layers' descriptors and their blob files in the build's OCI layout. */
  layers: Array<{
    digest: Digest;
    mediaType: string;
    size: number;
    blobPath: string;
    compression: LayerCompression;
  }>;
}

export async function pushBuilt(
  t: AfterHook,
  registry: RunningRegistry,
  repository: string,
  spec: ImageSpec,
): Promise<PushedImage> {
  const layout = await tempDirFor(t, 'gcfs-dl-layout-');
  const built = await buildImage(spec, { layoutDir: layout.path, gzipLevel: 1 });
  const pusher = new RegistryClient({
    insecureHosts: ['127.0.0.1'],
    credentials: { [registry.host]: ALICE },
  });
  await pushImage(pusher, built, { registry: registry.host, repository, tag: 'v1' });
  await pusher.close();
  return {
    built,
    image: `${registry.host}/${repository}:v1`,
    layers: built.layers.map((layer, i) => ({
      digest: layer.descriptor.digest,
      mediaType: layer.descriptor.mediaType,
      size: layer.descriptor.size,
      blobPath: join(built.layoutDir, 'blobs/sha256', digestHex(layer.descriptor.digest)),
      compression: spec.layers[i]?.compression ?? 'gzip',
    })),
  };
}

/** A downloader on a temp socket over a temp cache, stopped when the test ends. */
export async function runDownloader(
  t: AfterHook,
  options: Partial<DownloaderServerOptions> = {},
): Promise<{ running: RunningDownloader; client: DownloaderClient; cacheDir: string; socketPath: string }> {
  const dir = await tempDirFor(t, 'gcfs-dl-');
  const cacheDir = options.cacheDir ?? join(dir.path, 'layers');
  const socketPath = options.socketPath ?? join(dir.path, 'run', 'downloader.sock');
  const running = await startDownloaderServer({
    socketPath,
    cacheDir,
    maxConcurrentDownloads: 3,
    registry: { insecureHosts: ['127.0.0.1'] },
    ...options,
  });
  t.after(() => running.stop(100));
  const client = new DownloaderClient(socketPath);
  t.after(() => client.close());
  return { running, client, cacheDir, socketPath };
}

/** The request the FUSE side sends for a layer of an image, with alice's credential by default. */
export function requestFor(
  cacheDir: string,
  image: string,
  layer: { digest: string; mediaType: string; size: number },
  pullSecret: DownloadRequest['pullSecret'] = ALICE,
): DownloadRequest {
  return downloadRequestFor(cacheDir, image, layer, pullSecret);
}

/** What the published layer dir must look like: GNU tar's extraction, whiteouts converted. */
export async function referenceTree(
  t: AfterHook,
  layer: { blobPath: string; compression: LayerCompression },
): Promise<TreeSnapshot> {
  const dir = await tempDirFor(t, 'gcfs-dl-gnu-');
  await gnuTarExtract(layer.blobPath, dir.path, { compression: layer.compression });
  return overlayView(await snapshotTree(dir.path));
}
