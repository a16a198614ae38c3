import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertDigest,
  Digester,
  digestHex,
  digestOf,
  ErrorCode,
  isDigest,
  isGcfsError,
  parseDescriptor,
  parseDigest,
  parsePlatformString,
} from '../src/index.js';

const EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

test('digestOf and Digester agree with the known sha256 of empty input', () => {
  assert.equal(digestOf(new Uint8Array()), EMPTY);
  const d = new Digester();
  d.update(Buffer.from('ab'));
  d.update(Buffer.from('c'));
  assert.equal(d.digest(), digestOf('abc'));
  assert.equal(d.size, 3);
  assert.equal(digestHex(parseDigest(EMPTY)), EMPTY.slice(7));
});

test('parseDigest rejects malformed digests with a stable code', () => {
  for (const bad of [
    '',
    'sha256:',
    'sha256:abc',
    `md5:${'0'.repeat(32)}`,
    EMPTY.toUpperCase(),
    `${EMPTY}0`,
  ]) {
    assert.throws(
      () => parseDigest(bad),
      (err) => isGcfsError(err, ErrorCode.InvalidDigest),
      bad,
    );
    assert.equal(isDigest(bad), false);
  }
  assert.equal(isDigest(`sha512:${'a'.repeat(128)}`), true);
});

test('assertDigest throws DigestMismatch naming both digests', () => {
  const other = digestOf('x');
  assert.throws(
    () => assertDigest(parseDigest(EMPTY), other, 'blob'),
    (err) => isGcfsError(err, ErrorCode.DigestMismatch) && err.message.includes(other),
  );
});

test('parseDescriptor validates fields', () => {
  const ok = parseDescriptor({ mediaType: 'a/b', digest: EMPTY, size: 0, annotations: { k: 'v' } });
  assert.equal(ok.size, 0);
  const bad = [
    null,
    [],
    { digest: EMPTY, size: 1 },
    { mediaType: 'a/b', digest: 'nope', size: 1 },
    { mediaType: 'a/b', digest: EMPTY, size: -1 },
    { mediaType: 'a/b', digest: EMPTY, size: 1.5 },
    { mediaType: 'a/b', digest: EMPTY, size: 1, annotations: { k: 1 } },
    { mediaType: 'a/b', digest: EMPTY, size: 1, platform: { os: 'linux' } },
  ];
  for (const value of bad) {
    assert.throws(
      () => parseDescriptor(value, 'manifest'),
      (err) => isGcfsError(err, ErrorCode.InvalidDescriptor),
    );
  }
});

test('platform strings', () => {
  assert.deepEqual(parsePlatformString('linux/arm64/v8'), {
    os: 'linux',
    architecture: 'arm64',
    variant: 'v8',
  });
  assert.throws(
    () => parsePlatformString('linux'),
    (err) => isGcfsError(err, ErrorCode.InvalidArgument),
  );
});
