import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWwwAuthenticate } from '../src/index.js';

test('a Bearer challenge with quoted parameters', () => {
  assert.deepEqual(
    parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        },
      },
    ],
  );
});

test('Basic, bare tokens, escapes, several challenges and token68', () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
  ]);
  assert.deepEqual(
    parseWwwAuthenticate(
      'Negotiate abc123==, Basic realm=simple, Bearer realm="a\\"b", error="insufficient_scope"',
    ),
    [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'simple' } },
      { scheme: 'bearer', params: { realm: 'a"b', error: 'insufficient_scope' } },
    ],
  );
  assert.deepEqual(parseWwwAuthenticate('Bearer  realm = "x" , scope="a b"'), [
    { scheme: 'bearer', params: { realm: 'x', scope: 'a b' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate(''), []);
});
