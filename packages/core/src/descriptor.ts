import { type Digest, parseDigest } from './digest.js';
import { ErrorCode, GcfsError } from './errors.js';
import { quote } from './limits.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

function fail(what: string, problem: string): never {
  throw new GcfsError(
    ErrorCode.InvalidDescriptor,
    `invalid descriptor${what ? ` in ${what}` : ''}: ${problem}`,
  );
}

function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/** Check an untrusted JSON value is a well-formed descriptor and return it typed. */
export function parseDescriptor(value: unknown, what = ''): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(what, 'not an object');
  const raw = value as Record<string, unknown>;
  if (typeof raw.mediaType !== 'string' || raw.mediaType === '') fail(what, 'mediaType missing');
  if (typeof raw.digest !== 'string') fail(what, 'digest missing');
  if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 0) {
    fail(what, `size must be a non-negative integer, got ${JSON.stringify(raw.size)}`);
  }
  let digest: Digest;
  try {
    digest = parseDigest(raw.digest);
  } catch (err) {
    throw new GcfsError(ErrorCode.InvalidDescriptor, `invalid descriptor${what ? ` in ${what}` : ''}`, {
      cause: err,
    });
  }
  if (raw.urls !== undefined && !(Array.isArray(raw.urls) && raw.urls.every((u) => typeof u === 'string'))) {
    fail(what, 'urls must be a list of strings');
  }
  if (raw.annotations !== undefined && !isStringMap(raw.annotations)) {
    fail(what, 'annotations must map strings to strings');
  }
  const descriptor: Descriptor = { mediaType: raw.mediaType, digest, size: raw.size };
  if (raw.urls !== undefined) descriptor.urls = raw.urls as string[];
  if (raw.annotations !== undefined) descriptor.annotations = raw.annotations as Record<string, string>;
  if (raw.platform !== undefined) descriptor.platform = parsePlatform(raw.platform, what);
  if (typeof raw.artifactType === 'string') descriptor.artifactType = raw.artifactType;
  return descriptor;
}

function parsePlatform(value: unknown, what: string): Platform {
  if (typeof value !== 'object' || value === null) fail(what, 'platform must be an object');
  const raw = value as Record<string, unknown>;
  if (typeof raw.architecture !== 'string' || typeof raw.os !== 'string') {
    fail(what, 'platform needs os and architecture');
  }
  const platform: Platform = { architecture: raw.architecture, os: raw.os };
  if (typeof raw.variant === 'string') platform.variant = raw.variant;
  if (typeof raw['os.version'] === 'string') platform['os.version'] = raw['os.version'];
  return platform;
}

/** `os/arch[/variant]`, as containerd and docker write platforms. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Parse `os/arch[/variant]`. */
export function parsePlatformString(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length > 0) {
    throw new GcfsError(ErrorCode.InvalidArgument, `invalid platform ${quote(text)}`, {
      hint: 'use os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8',
    });
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}
