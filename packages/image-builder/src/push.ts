import type { Readable } from 'node:stream';
import { assertDigest, type Descriptor, type Digest } from '@gcfs/core';
import type { BuildResult } from './image.js';
import { OciLayout } from './layout.js';

/** Where an image lives in a registry; structurally what packages/registry calls a reference. */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** What pushing needs from a registry client (packages/registry's RegistryClient fits). */
export interface ImagePusher {
  pushBlob(ref: Reference, desc: Descriptor, content: Uint8Array | (() => Readable)): Promise<void>;
  pushManifest(ref: Reference, mediaType: string, body: Uint8Array): Promise<Digest>;
}

/**
 * Push a built image: every layer and config blob, each platform's manifest by digest, then
 * the top-level manifest or index under `ref.tag`. Returns the top-level digest.
 */
export async function pushImage(
  pusher: ImagePusher,
  built: BuildResult,
  ref: { registry: string; repository: string; tag: string },
): Promise<Digest> {
  const layout = await OciLayout.open(built.layoutDir);
  const repo = { registry: ref.registry, repository: ref.repository };
  const pushed = new Set<string>();
  for (const manifest of built.manifests) {
    for (const blob of [...manifest.layers.map((l) => l.descriptor), manifest.configDescriptor]) {
      if (pushed.has(blob.digest)) continue;
      pushed.add(blob.digest);
      await pusher.pushBlob({ ...repo, digest: blob.digest }, blob, () => layout.openBlob(blob.digest));
    }
    if (built.indexDigest !== undefined)
      await pushJson(pusher, layout, { ...repo, digest: manifest.descriptor.digest }, manifest.descriptor);
  }
  return pushJson(pusher, layout, { ...repo, tag: ref.tag }, built.root);
}

async function pushJson(
  pusher: ImagePusher,
  layout: OciLayout,
  ref: Reference,
  desc: Descriptor,
): Promise<Digest> {
  const digest = await pusher.pushManifest(ref, desc.mediaType, await layout.readBlob(desc.digest));
  assertDigest(desc.digest, digest, `manifest pushed to ${ref.registry}/${ref.repository}`);
  return digest;
}
