import type { Readable } from 'node:stream';
import {
  assertDigest,
  type Descriptor,
  type Digest,
  digestAlgorithm,
  digestOf,
  ErrorCode,
  GcfsError,
  isDigest,
  isGcfsError,
} from '@gcfs/core';
import type { Capability } from './hosts.js';
import { formatReference, type Reference } from './reference.js';
import { header, responseError } from './response.js';
import type { Send } from './router.js';
import type { HttpResponse } from './transport.js';

/** The size of a blob from a HEAD request; ERR_NOT_FOUND when the registry lacks it. */
export async function blobSize(send: Send, reference: Reference, digest: Digest, capability: Capability) {
  const what = `blob ${digest} of ${reference.registry}/${reference.repository}`;
  const res = await send(reference, capability, { method: 'HEAD', path: `blobs/${digest}` });
  if (res.status !== 200) throw await responseError(res, what);
  await res.body.dump();
  const size = Number(header(res, 'content-length'));
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: HEAD without a Content-Length`);
  }
  return size;
}

/** The upload URL from a registry's Location header (relative or absolute). */
async function uploadLocation(res: HttpResponse, what: string): Promise<URL> {
  if (res.status !== 202) throw await responseError(res, what);
  await res.body.dump();
  const location = header(res, 'location');
  if (!location) throw new GcfsError(ErrorCode.RegistryProtocol, `${what}: upload answer without Location`);
  return new URL(location, res.url);
}

/** Upload a blob unless the registry has it: monolithic PUT for bytes, one streamed PATCH for streams. */
export async function uploadBlob(
  send: Send,
  reference: Reference,
  desc: Descriptor,
  content: Uint8Array | (() => Readable),
): Promise<void> {
  const what = `push of blob ${desc.digest} to ${reference.registry}/${reference.repository}`;
  if (content instanceof Uint8Array) {
    if (content.byteLength !== desc.size) {
      throw new GcfsError(
        ErrorCode.SizeMismatch,
        `${what}: ${content.byteLength} bytes, descriptor says ${desc.size}`,
      );
    }
    assertDigest(desc.digest, digestOf(content, digestAlgorithm(desc.digest)), what);
  }
  try {
    if ((await blobSize(send, reference, desc.digest, 'push')) === desc.size) return;
  } catch (err) {
    if (!isGcfsError(err, ErrorCode.NotFound)) throw err;
  }
  let location = await uploadLocation(
    await send(reference, 'push', { method: 'POST', path: 'blobs/uploads/' }),
    what,
  );
  if (!(content instanceof Uint8Array)) {
    const patched = await send(reference, 'push', {
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
      // A half-sent stream leaves the upload in an unknown state: no blind retry.
      maxAttempts: 1,
    });
    location = await uploadLocation(patched, what);
    // The registry says what it received; a stream of the wrong length must not be committed.
    const received = /^(?:bytes=)?0-(\d+)$/.exec(header(patched, 'range') ?? '');
    if (received && Number(received[1]) + 1 !== desc.size) {
      throw new GcfsError(
        ErrorCode.SizeMismatch,
        `${what}: the stream gave ${Number(received[1]) + 1} bytes, descriptor says ${desc.size}`,
      );
    }
  }
  // The registry checks the digest of what it received (DIGEST_INVALID → ERR_DIGEST_MISMATCH).
  location.searchParams.set('digest', desc.digest);
  const done = await send(reference, 'push', {
    method: 'PUT',
    url: location,
    headers: { 'content-type': 'application/octet-stream' },
    body: content instanceof Uint8Array ? content : new Uint8Array(0),
  });
  if (done.status !== 201) throw await responseError(done, what);
  await done.body.dump();
}

/** Store a manifest under the reference's tag (or digest); returns its digest. */
export async function uploadManifest(
  send: Send,
  reference: Reference,
  mediaType: string,
  body: Uint8Array,
): Promise<Digest> {
  const what = `push of manifest ${formatReference(reference)}`;
  const digest = digestOf(body, reference.digest ? digestAlgorithm(reference.digest) : 'sha256');
  if (reference.digest) assertDigest(reference.digest, digest, what);
  const res = await send(reference, 'push', {
    method: 'PUT',
    path: `manifests/${reference.tag ?? reference.digest}`,
    headers: { 'content-type': mediaType },
    body,
  });
  if (res.status !== 201 && res.status !== 200) throw await responseError(res, what);
  await res.body.dump();
  const stored = header(res, 'docker-content-digest');
  if (isDigest(stored) && digestAlgorithm(stored) === digestAlgorithm(digest))
    assertDigest(digest, stored, what);
  return digest;
}
