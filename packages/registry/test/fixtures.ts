import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { type Descriptor, type Digest, digestOf, MediaType, type Platform, parseDigest } from '@gcfs/core';
import {
  type AfterHook,
  disposeAfter,
  type RegistryOptions,
  type RunningRegistry,
  startRegistry,
} from '@gcfs/testkit';
import { type Reference, RegistryClient, type RegistryClientOptions } from '../src/index.js';

/** A registry from testkit, stopped when the test (or suite) ends. */
export async function registryFor(hook: AfterHook, options: RegistryOptions = {}): Promise<RunningRegistry> {
  return disposeAfter(hook, await startRegistry(options), (r) => r.stop());
}

/** A client allowed plain HTTP to loopback test servers, closed when the test ends. */
export function clientFor(hook: AfterHook, options: RegistryClientOptions = {}): RegistryClient {
  const client = new RegistryClient({
    insecureHosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
    backoff: { initialMs: 20, maxMs: 200 },
    ...options,
  });
  return disposeAfter(hook, client, (c) => c.close());
}

export function descriptorOf(mediaType: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
}

export interface PushedImage {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  config: Record<string, unknown>;
  configDescriptor: Descriptor;
  layers: Array<{ descriptor: Descriptor; bytes: Buffer }>;
}

/** Push a small image (random layer bytes; the registry does not look inside layers). */
export async function pushImage(
  client: RegistryClient,
  ref: Reference,
  options: { layerSizes?: number[]; platform?: Platform; tag?: boolean } = {},
): Promise<PushedImage> {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers = (options.layerSizes ?? [1000, 70_000]).map((size) => {
    const bytes = randomBytes(size);
    return { descriptor: descriptorOf(MediaType.OciLayer, bytes), bytes };
  });
  const config = {
    ...platform,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.descriptor.digest) },
    config: { Cmd: ['/bin/true'] },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDescriptor = descriptorOf(MediaType.OciConfig, configBytes);
  await client.pushBlob(ref, configDescriptor, configBytes);
  for (const layer of layers) await client.pushBlob(ref, layer.descriptor, layer.bytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDescriptor,
      layers: layers.map((l) => l.descriptor),
    }),
  );
  const manifestDigest = digestOf(manifestBytes);
  const target = options.tag === false ? { ...ref, tag: undefined, digest: manifestDigest } : ref;
  const pushed = await client.pushManifest(target, MediaType.OciManifest, manifestBytes);
  parseDigest(pushed);
  return { manifestDigest, manifestBytes, config, configDescriptor, layers };
}

/** `host/repository:tag` as a Reference. */
export function ref(host: string, repository: string, tag = 'v1'): Reference {
  return { registry: host, repository, tag };
}

/**
 * An AfterHook for resources made in a suite's `before`: node:test's `after` called there
 * would run as soon as the hook ends. Call this in the describe body.
 */
export function suiteCleanup(): AfterHook {
  const disposers: Array<() => unknown> = [];
  after(async () => {
    for (const dispose of disposers.reverse()) await dispose();
  });
  return { after: (fn) => disposers.push(fn) };
}
