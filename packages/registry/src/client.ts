import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import {
  assertDigest,
  type BackoffOptions,
  type Descriptor,
  type Digest,
  digestAlgorithm,
  digestOf,
  ErrorCode,
  GcfsError,
  isDigest,
  Limits,
  MediaType,
  type Platform,
} from '@gcfs/core';
import { Authenticator } from './auth.js';
import { verifiedBlobStream } from './blob-stream.js';
import { type Credential, type CredentialSource, CredentialStore } from './credentials.js';
import type { RegistryEvents } from './events.js';
import {
  type ImageManifest,
  MANIFEST_ACCEPT,
  manifestKind,
  manifestMediaType,
  parseImageIndex,
  parseImageManifest,
  selectPlatform,
} from './manifest.js';
import { blobSize, uploadBlob, uploadManifest } from './push.js';
import {
  formatReference,
  type ImageReference,
  type Reference,
  toReference,
  withDigest,
} from './reference.js';
import { header, parseContentRange, readBody, responseError } from './response.js';
import { Router, type Send } from './router.js';
import { type HttpResponse, Transport } from './transport.js';

export interface RegistryClientOptions {
  /** A credential source (e.g. CredentialStore.fromDockerConfig()) or credentials per host. */
  credentials?: CredentialSource | Record<string, Credential>;
  /** containerd's hosts directory (certs.d) with `<host>/hosts.toml` mirror configuration. */
  hostsDir?: string;
  /** Hosts reached over plain HTTP (`host:port`, or a bare host for any port). */
  insecureHosts?: string[];
  /** The platform chosen from image indexes; linux/amd64 by default. */
  platform?: Platform;
  /** Attempts per request (and connection losses per blob stream) before giving up. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  userAgent?: string;
}

/** A manifest as served: its media type, its (verified) digest and its bytes. */
export interface ManifestResponse {
  mediaType: string;
  digest: Digest;
  bytes: Buffer;
}

export interface ResolvedImage {
  /** The reference asked for, pinned to the digest it resolved to (index or manifest). */
  reference: ImageReference;
  indexDigest?: Digest;
  manifestDigest: Digest;
  manifest: ImageManifest;
  mediaType: string;
  manifestBytes: Buffer;
  /** The image configuration, fetched and verified, when the config is an image config. */
  config?: Record<string, unknown>;
}

export interface BlobReadOptions {
  signal?: AbortSignal;
}

// A registry that ignores Range sends the whole blob: acceptable to slice only when small.
const MAX_UNRANGED_BLOB = 4 * 1024 * 1024;
const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

function invalidArgument(message: string): GcfsError {
  return new GcfsError(ErrorCode.InvalidArgument, message);
}

/** The OCI distribution client: manifests, blobs, pushes, through mirrors, auth and retries. */
export class RegistryClient extends EventEmitter<RegistryEvents> {
  readonly platform: Platform;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffOptions;
  private readonly transport: Transport;
  private readonly send: Send;

  constructor(options: RegistryClientOptions = {}) {
    super();
    this.platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
    this.maxAttempts = options.maxAttempts ?? 5;
    this.backoff = options.backoff ?? { initialMs: 200, maxMs: 5000 };
    const credentials = options.credentials;
    const source =
      credentials !== undefined && typeof (credentials as CredentialSource).get === 'function'
        ? (credentials as CredentialSource)
        : new CredentialStore({ explicit: (credentials as Record<string, Credential> | undefined) ?? {} });
    // The transport asks the router which hosts may use plain HTTP (learnt from hosts.toml).
    let router: Router | undefined;
    this.transport = new Transport({
      maxAttempts: this.maxAttempts,
      backoff: this.backoff,
      userAgent: options.userAgent ?? 'gcfs/0.1',
      events: this,
      allowPlainHttp: (url) => router?.allowsPlainHttp(url) ?? false,
    });
    router = new Router(options, new Authenticator(this.transport, source, this), this);
    this.send = router.send;
  }

  /**
   * Resolve a reference to an image manifest for the client's platform, with its config
   * unless `withConfig` is false (one request fewer when only the layers matter).
   */
  async resolve(ref: Reference | string, { withConfig = true } = {}): Promise<ResolvedImage> {
    const reference = toReference(ref);
    const what = formatReference(reference);
    const top = await this.getManifest(reference);
    let manifestResponse = top;
    let indexDigest: Digest | undefined;
    if (manifestKind(top.mediaType, what) === 'index') {
      const entry = selectPlatform(parseImageIndex(top.bytes, top.mediaType, what), this.platform, what);
      manifestResponse = await this.getManifest(withDigest(reference, entry.digest));
      if (manifestKind(manifestResponse.mediaType, what) !== 'manifest') {
        throw new GcfsError(
          ErrorCode.UnsupportedMediaType,
          `${what}: index entry ${entry.digest} is not a manifest`,
        );
      }
      indexDigest = top.digest;
    }
    const manifest = parseImageManifest(manifestResponse.bytes, manifestResponse.mediaType, what);
    const resolved: ResolvedImage = {
      reference: withDigest(reference, top.digest),
      manifestDigest: manifestResponse.digest,
      manifest,
      mediaType: manifestResponse.mediaType,
      manifestBytes: manifestResponse.bytes,
    };
    if (indexDigest) resolved.indexDigest = indexDigest;
    if (withConfig && IMAGE_CONFIG_TYPES.has(manifest.config.mediaType)) {
      if (manifest.config.size > Limits.configBytes) {
        throw new GcfsError(
          ErrorCode.RegistryProtocol,
          `${what}: image config of ${manifest.config.size} bytes, more than ${Limits.configBytes}`,
        );
      }
      const bytes = await this.fetchBlob(reference, manifest.config);
      try {
        resolved.config = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: image config is not JSON`, { cause: err });
      }
    }
    return resolved;
  }

  /** Fetch a manifest or index as served, verified against the digest asked for or announced. */
  async getManifest(ref: Reference | string): Promise<ManifestResponse> {
    const reference = toReference(ref);
    const what = `manifest ${formatReference(reference)}`;
    const res = await this.send(reference, reference.digest ? 'pull' : 'resolve', {
      method: 'GET',
      path: `manifests/${reference.digest ?? reference.tag}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
    });
    if (res.status !== 200) throw await responseError(res, what);
    const bytes = await readBody(res, Limits.manifestBytes, what);
    const announced = header(res, 'docker-content-digest');
    const expected = reference.digest ?? (isDigest(announced) ? announced : undefined);
    const digest = digestOf(bytes, expected ? digestAlgorithm(expected) : 'sha256');
    if (expected) assertDigest(expected, digest, what);
    return { mediaType: manifestMediaType(header(res, 'content-type'), bytes, what), digest, bytes };
  }

  /** A whole blob in memory, verified (size and digest). */
  async fetchBlob(ref: Reference | string, desc: Descriptor, options: BlobReadOptions = {}): Promise<Buffer> {
    return Buffer.concat(await this.openBlobStream(ref, desc, options).toArray());
  }

  /**
   * Bytes [offset, offset+length) of a blob with one Range request. Not digest-verified
   * (a part cannot be), except when a registry without Range support sends a small blob whole.
   */
  async readBlobRange(
    ref: Reference | string,
    desc: Descriptor,
    offset: number,
    length: number,
    options: BlobReadOptions = {},
  ): Promise<Buffer> {
    const reference = toReference(ref);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw invalidArgument(`bad range offset=${offset} length=${length}`);
    }
    if (offset + length > desc.size) {
      throw invalidArgument(
        `range ${offset}+${length} is beyond the end of blob ${desc.digest} (${desc.size} bytes)`,
      );
    }
    if (length === 0) return Buffer.alloc(0);
    const what = `blob ${desc.digest} of ${reference.repository} range ${offset}+${length}`;
    const end = offset + length - 1;
    const res = await this.openBlob(reference, desc.digest, offset, end, options.signal);
    if (res.status === 206) {
      const range = parseContentRange(header(res, 'content-range'));
      if (
        range?.start !== offset ||
        range.end !== end ||
        (range.total !== undefined && range.total !== desc.size)
      ) {
        await res.body.dump();
        throw new GcfsError(
          ErrorCode.RegistryProtocol,
          `${what}: answered Content-Range ${header(res, 'content-range') ?? 'none'}`,
        );
      }
      const bytes = await readBody(res, length, what);
      if (bytes.length !== length) {
        throw new GcfsError(ErrorCode.SizeMismatch, `${what}: got ${bytes.length} bytes`);
      }
      return bytes;
    }
    if (desc.size > MAX_UNRANGED_BLOB && !(offset === 0 && length === desc.size)) {
      await res.body.dump();
      throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: the registry ignored the Range header`, {
        hint: 'this registry (or a proxy in front of it) does not support Range requests',
      });
    }
    const whole = await readBody(res, desc.size, what);
    assertDigest(desc.digest, digestOf(whole, digestAlgorithm(desc.digest)), what);
    return whole.subarray(offset, offset + length);
  }

  /**
   * The whole blob as a stream that resumes after connection losses and verifies size and
   * digest; it errors (ERR_DIGEST_MISMATCH, ERR_SIZE_MISMATCH) at the end instead of ending
   * when the content is wrong, so data is unverified until 'end'.
   */
  openBlobStream(ref: Reference | string, desc: Descriptor, options: BlobReadOptions = {}): Readable {
    const reference = toReference(ref);
    return verifiedBlobStream(desc, {
      open: (offset) => this.openBlob(reference, desc.digest, offset, undefined, options.signal),
      maxAttempts: this.maxAttempts,
      backoff: this.backoff,
      events: this,
      signal: options.signal,
      what: `blob ${desc.digest} of ${reference.registry}/${reference.repository}`,
    });
  }

  /** The size of a blob (HEAD); ERR_NOT_FOUND when the registry does not have it. */
  async statBlob(ref: Reference | string, digest: Digest): Promise<number> {
    return blobSize(this.send, toReference(ref), digest, 'pull');
  }

  /** Upload a blob unless the registry has it: monolithic PUT for bytes, streamed PATCH for streams. */
  pushBlob(ref: Reference | string, desc: Descriptor, content: Uint8Array | (() => Readable)): Promise<void> {
    return uploadBlob(this.send, toReference(ref), desc, content);
  }

  /** Store a manifest under the reference's tag (or digest); returns its digest. */
  pushManifest(ref: Reference | string, mediaType: string, body: Uint8Array): Promise<Digest> {
    return uploadManifest(this.send, toReference(ref), mediaType, body);
  }

  /** Close pooled connections; the client is not usable afterwards. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  /** GET a blob from `start` (to `end` inclusive); throws for anything but 200/206. */
  private async openBlob(
    reference: Reference,
    digest: Digest,
    start: number,
    end: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    const ranged = start > 0 || end !== undefined;
    const res = await this.send(reference, 'pull', {
      method: 'GET',
      path: `blobs/${digest}`,
      headers: ranged ? { range: `bytes=${start}-${end ?? ''}` } : {},
      signal,
    });
    if (res.status !== 200 && res.status !== 206) {
      throw await responseError(res, `blob ${digest} of ${reference.registry}/${reference.repository}`);
    }
    return res;
  }
}
