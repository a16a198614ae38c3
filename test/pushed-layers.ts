// An image of seeded files pushed to a test registry, with what each file must contain.

import type { TestContext } from 'node:test';
import { buildImage, type Entry, pushImage, seededSha256 } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { tempDirFor } from '@gcfs/testkit';

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
