import {
  type Descriptor,
  ErrorCode,
  formatPlatform,
  GcfsError,
  INDEX_MEDIA_TYPES,
  layerCompression,
  MANIFEST_MEDIA_TYPES,
  MediaType,
  type Platform,
  parseDescriptor,
  SCHEMA1_MEDIA_TYPES,
} from '@gcfs/core';

/** An image manifest (OCI or Docker schema 2), validated. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
}

/** An image index or Docker manifest list, validated. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** Every manifest type we can read, for the Accept header; schema 1 is detected, not asked for. */
export const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES];

export type ManifestKind = 'manifest' | 'index';

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: manifest is not valid JSON`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: manifest is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * The media type of a manifest: the Content-Type, unless the registry sent a generic one,
 * in which case the document's own `mediaType` (or its shape) tells.
 */
export function manifestMediaType(contentType: string | undefined, bytes: Uint8Array, what: string): string {
  const declared = contentType?.split(';')[0]?.trim().toLowerCase();
  if (declared && declared !== 'application/json' && declared !== 'text/plain') return declared;
  const doc = parseJson(bytes, what);
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (doc.schemaVersion === 1) return MediaType.DockerSchema1;
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  return MediaType.OciManifest;
}

/** Whether a media type is a manifest or an index; schema 1 and anything else are refused. */
export function manifestKind(mediaType: string, what: string): ManifestKind {
  if (MANIFEST_MEDIA_TYPES.includes(mediaType)) return 'manifest';
  if (INDEX_MEDIA_TYPES.includes(mediaType)) return 'index';
  if (SCHEMA1_MEDIA_TYPES.includes(mediaType)) {
    throw new GcfsError(ErrorCode.UnsupportedSchema, `${what}: Docker schema 1 manifests are not supported`, {
      hint: 're-push the image as Docker schema 2 or OCI (any current docker, buildah or crane does)',
      details: { mediaType },
    });
  }
  throw new GcfsError(
    ErrorCode.UnsupportedMediaType,
    `${what}: unsupported manifest media type ${mediaType}`,
    {
      hint: `expected one of ${MANIFEST_ACCEPT.join(', ')}`,
      details: { mediaType },
    },
  );
}

function checkDeclaredType(doc: Record<string, unknown>, mediaType: string, what: string): void {
  if (doc.schemaVersion !== 2) {
    throw new GcfsError(ErrorCode.UnsupportedSchema, `${what}: schemaVersion ${String(doc.schemaVersion)}`);
  }
  if (typeof doc.mediaType === 'string' && doc.mediaType !== mediaType) {
    throw new GcfsError(
      ErrorCode.RegistryProtocol,
      `${what}: served as ${mediaType} but the document says ${doc.mediaType}`,
    );
  }
}

function annotations(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string'));
}

/** Parse and validate an image manifest, refusing layers we cannot read. */
export function parseImageManifest(bytes: Uint8Array, mediaType: string, what: string): ImageManifest {
  const doc = parseJson(bytes, what);
  checkDeclaredType(doc, mediaType, what);
  if (!Array.isArray(doc.layers)) throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: no layers list`);
  const layers = doc.layers.map((layer, i) => parseDescriptor(layer, `${what} layer ${i}`));
  for (const [i, layer] of layers.entries()) {
    if (layerCompression(layer.mediaType) === undefined) {
      throw new GcfsError(
        ErrorCode.UnsupportedMediaType,
        `${what}: layer ${i} (${layer.digest}) has media type ${layer.mediaType}, which is not a tar layer we can read`,
        { hint: 'layers must be tar, tar+gzip or tar+zstd (OCI or Docker media types)' },
      );
    }
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: parseDescriptor(doc.config, `${what} config`),
    layers,
  };
  const notes = annotations(doc.annotations);
  if (notes) manifest.annotations = notes;
  if (doc.subject !== undefined) manifest.subject = parseDescriptor(doc.subject, `${what} subject`);
  return manifest;
}

/** Parse and validate an image index or manifest list. */
export function parseImageIndex(bytes: Uint8Array, mediaType: string, what: string): ImageIndex {
  const doc = parseJson(bytes, what);
  checkDeclaredType(doc, mediaType, what);
  if (!Array.isArray(doc.manifests)) {
    throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: no manifests list`);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what} manifest ${i}`)),
  };
  const notes = annotations(doc.annotations);
  if (notes) index.annotations = notes;
  return index;
}

// arm64 images usually omit the variant, which then means v8.
function variantOf(platform: Platform): string | undefined {
  return platform.variant ?? (platform.architecture === 'arm64' ? 'v8' : undefined);
}

/** The entry of an index for a platform: same os and architecture, and variant when one is wanted. */
export function selectPlatform(index: ImageIndex, wanted: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter(
    (m) =>
      m.platform !== undefined &&
      m.platform.os === wanted.os &&
      m.platform.architecture === wanted.architecture &&
      (wanted.variant === undefined || variantOf(m.platform) === variantOf(wanted)),
  );
  // Without a wanted variant, prefer an entry without one (the baseline), else the first.
  const chosen = candidates.find((m) => m.platform?.variant === undefined) ?? candidates[0];
  if (!chosen) {
    const present = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown'));
    throw new GcfsError(ErrorCode.PlatformNotFound, `${what}: no manifest for ${formatPlatform(wanted)}`, {
      hint: `the index has: ${[...new Set(present)].join(', ') || 'no platforms'}`,
      details: { wanted: formatPlatform(wanted), present: present.join(',') },
    });
  }
  return chosen;
}
