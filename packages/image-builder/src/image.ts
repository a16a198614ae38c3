import { type Descriptor, type Digest, ErrorCode, GcfsError, MediaType, type Platform } from '@gcfs/core';
import { type BuiltLayer, buildLayer, type CompressionOptions, type ManifestFormat } from './layer.js';
import { OciLayout } from './layout.js';
import { type ContainerConfig, DEFAULT_PLATFORM, type ImageSpec, type IndexSpec } from './spec.js';

export interface BuildOptions extends CompressionOptions {
  /** The OCI layout directory to write (created if missing; several builds may share one). */
  layoutDir: string;
  /** Recorded in the layout's index.json as org.opencontainers.image.ref.name. */
  tag?: string;
  /** Media types: OCI (default) or Docker schema 2. */
  format?: ManifestFormat;
}

/** One platform's image as built. */
export interface BuiltManifest {
  descriptor: Descriptor;
  platform: Platform;
  configDescriptor: Descriptor;
  layers: BuiltLayer[];
}

/** Everything a test needs to know about what was built and where it is. */
export interface BuildResult {
  layoutDir: string;
  /** The image's top-level descriptor: the index when multi-platform, else the manifest. */
  root: Descriptor;
  /** The (first) manifest's digest. */
  manifestDigest: Digest;
  /** Set for a multi-platform image. */
  indexDigest?: Digest;
  manifests: BuiltManifest[];
  /** The first manifest's config and layers, for single-platform convenience. */
  configDescriptor: Descriptor;
  layers: BuiltLayer[];
}

const MEDIA_TYPES = {
  oci: { manifest: MediaType.OciManifest, index: MediaType.OciIndex, config: MediaType.OciConfig },
  docker: {
    manifest: MediaType.DockerManifest,
    index: MediaType.DockerManifestList,
    config: MediaType.DockerConfig,
  },
} as const;

function runtimeConfig(config: ContainerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (config.user !== undefined) out.User = config.user;
  if (config.env !== undefined) out.Env = config.env;
  if (config.entrypoint !== undefined) out.Entrypoint = config.entrypoint;
  if (config.cmd !== undefined) out.Cmd = config.cmd;
  if (config.workingDir !== undefined) out.WorkingDir = config.workingDir;
  if (config.labels !== undefined) out.Labels = config.labels;
  return out;
}

async function buildManifest(
  layout: OciLayout,
  spec: ImageSpec,
  options: BuildOptions,
): Promise<BuiltManifest> {
  const layers: BuiltLayer[] = [];
  // One layer at a time: each already keeps a core busy compressing.
  for (const layer of spec.layers) {
    layers.push(await buildLayer(layout, layer, options.format ?? 'oci', options));
  }
  return writeManifest(layout, spec, layers, options);
}

/** The config and manifest of `spec` over layers already in the layout. */
async function writeManifest(
  layout: OciLayout,
  spec: Omit<ImageSpec, 'layers'>,
  layers: BuiltLayer[],
  options: BuildOptions,
): Promise<BuiltManifest> {
  const types = MEDIA_TYPES[options.format ?? 'oci'];
  const platform = spec.platform ?? DEFAULT_PLATFORM;
  const config: Record<string, unknown> = {};
  if (spec.created !== undefined) config.created = spec.created;
  Object.assign(config, {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: runtimeConfig(spec.config ?? {}),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const configDescriptor = await layout.writeJson(types.config, config);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
  };
  if (spec.annotations) manifest.annotations = spec.annotations;
  const descriptor = await layout.writeJson(types.manifest, manifest);
  return { descriptor, platform, configDescriptor, layers };
}

function result(layoutDir: string, root: Descriptor, manifests: BuiltManifest[]): BuildResult {
  const first = manifests[0]!;
  return {
    layoutDir,
    root,
    manifestDigest: first.descriptor.digest,
    manifests,
    configDescriptor: first.configDescriptor,
    layers: first.layers,
  };
}

/** Build a single-platform image into an OCI layout. */
export async function buildImage(spec: ImageSpec, options: BuildOptions): Promise<BuildResult> {
  const layout = await OciLayout.open(options.layoutDir);
  const built = await buildManifest(layout, spec, options);
  await layout.addRoot(built.descriptor, options.tag);
  return result(layout.dir, built.descriptor, [built]);
}

/**
 * An image over layers built earlier into the same layout (buildLayer): writes only its
 * config and manifest, so that images differing in their config alone (labels, a creation
 * date) share every layer, and a cache of layers serves them all.
 */
export async function imageOfLayers(
  spec: Omit<ImageSpec, 'layers'>,
  layers: BuiltLayer[],
  options: BuildOptions,
): Promise<BuildResult> {
  const layout = await OciLayout.open(options.layoutDir);
  const built = await writeManifest(layout, spec, layers, options);
  await layout.addRoot(built.descriptor, options.tag);
  return result(layout.dir, built.descriptor, [built]);
}

/** Build one image per platform and an image index (Docker: manifest list) over them. */
export async function buildIndex(spec: IndexSpec, options: BuildOptions): Promise<BuildResult> {
  const layout = await OciLayout.open(options.layoutDir);
  const types = MEDIA_TYPES[options.format ?? 'oci'];
  if (spec.manifests.length === 0) {
    throw new GcfsError(ErrorCode.InvalidArgument, 'an image index needs at least one manifest');
  }
  const manifests: BuiltManifest[] = [];
  for (const image of spec.manifests) manifests.push(await buildManifest(layout, image, options));
  const index: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: types.index,
    manifests: manifests.map((m) => ({ ...m.descriptor, platform: m.platform })),
  };
  if (spec.annotations) index.annotations = spec.annotations;
  const root = await layout.writeJson(types.index, index);
  await layout.addRoot(root, options.tag);
  return { ...result(layout.dir, root, manifests), indexDigest: root.digest };
}
