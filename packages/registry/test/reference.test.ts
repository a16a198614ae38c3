import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isGcfsError, Limits } from '@gcfs/core';
import { formatReference, parseReference, registryApiHost, toReference } from '../src/index.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('Docker Hub defaults: docker.io, library/, latest', () => {
  assert.deepEqual(
    { ...parseReference('busybox') },
    {
      registry: 'docker.io',
      repository: 'library/busybox',
      tag: 'latest',
    },
  );
  assert.deepEqual(
    { ...parseReference('user/app:1.0') },
    {
      registry: 'docker.io',
      repository: 'user/app',
      tag: '1.0',
    },
  );
  assert.equal(String(parseReference('index.docker.io/library/alpine:3')), 'docker.io/library/alpine:3');
  assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
});

test('registry hosts with ports, localhost, digests and tag+digest', () => {
  const a = parseReference(`127.0.0.1:5000/team/app:v1@${DIGEST}`);
  assert.deepEqual(
    { ...a },
    { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1', digest: DIGEST },
  );
  assert.equal(formatReference(a), `127.0.0.1:5000/team/app:v1@${DIGEST}`);
  const b = parseReference(`localhost/app@${DIGEST}`);
  assert.equal(b.registry, 'localhost');
  assert.equal(b.tag, undefined, 'no latest default when a digest is given');
  assert.equal(parseReference('localhost:5000/a/b/c').repository, 'a/b/c');
  assert.equal(parseReference('Example.COM/app').registry, 'example.com');
  assert.equal(parseReference('[::1]:5000/app:x').registry, '[::1]:5000');
});

test('toReference normalizes structs and strings alike', () => {
  assert.equal(
    String(toReference({ registry: 'docker.io', repository: 'library/redis' })),
    'docker.io/library/redis:latest',
  );
  assert.equal(String(toReference('redis:7')), 'docker.io/library/redis:7');
});

test('invalid references fail with ERR_INVALID_REFERENCE', () => {
  for (const bad of [
    '',
    ' busybox',
    'Upper/Case',
    'docker.io/UPPER',
    'app:',
    'app:-bad',
    `app:${'x'.repeat(129)}`,
    'app@sha256:123',
    'app@md5:00',
    'a//b',
    'a/b/',
    'a__-b',
    'host:port/app',
    `example.com/${'a'.repeat(260)}`,
  ]) {
    assert.throws(
      () => parseReference(bad),
      (err) => isGcfsError(err, ErrorCode.InvalidReference),
      JSON.stringify(bad),
    );
  }
});

test('an over-long reference is refused before parsing, its message quoting a short prefix', () => {
  const text = `127.0.0.1:5000/${'a'.repeat(3 * 1024 * 1024)}:1`;
  assert.throws(
    () => parseReference(text),
    (err) =>
      isGcfsError(err, ErrorCode.InvalidReference) &&
      err.message.length < Limits.quoted + 200 &&
      /longer than 520 characters/.test(err.message),
  );
});
