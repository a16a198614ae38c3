import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError, ErrorCode, GcfsError, redact, redactUrl, registerSecret } from '../src/index.js';

test('redact removes userinfo from URLs', () => {
  assert.equal(
    redactUrl('https://alice:s3cret@registry.example/v2/'),
    'https://(redacted)@registry.example/v2/',
  );
  assert.equal(redact('fetch http://bob@host:5000/x failed'), 'fetch http://(redacted)@host:5000/x failed');
});

test('redact removes Authorization values and secret query parameters', () => {
  const text =
    'Authorization: Bearer eyJhbGciOi.abc.def and Basic YWxpY2U6c2VjcmV0 at /token?scope=x&access_token=zzz9&a=1';
  const out = redact(text);
  assert.doesNotMatch(out, /eyJhbGciOi|YWxpY2U6c2VjcmV0|zzz9/);
  assert.match(out, /scope=x/);
  assert.match(out, /&a=1/);
});

test('redact removes secret JSON fields', () => {
  const out = redact('{"username":"alice","password":"hunter22","auth":"YWxpY2U6aHVudGVyMjI="}');
  assert.doesNotMatch(out, /hunter22|YWxpY2U6aHVudGVyMjI=/);
  assert.match(out, /"username":"alice"/);
  // a field that merely ends in a secret-looking word is not a secret
  assert.equal(redact('registry_auth="token"'), 'registry_auth="token"');
});

test('registered secrets are removed wherever they appear', () => {
  registerSecret('plain-text-password-42');
  assert.equal(redact('login failed for plain-text-password-42!'), 'login failed for (redacted)!');
  registerSecret('ab'); // too short to register safely: would redact ordinary text
  assert.equal(redact('abc'), 'abc');
});

test('GcfsError keeps code, hint and cause and never carries credentials', () => {
  const cause = new Error('connect ECONNREFUSED http://u:pw-secret@10.0.0.1');
  const err = new GcfsError(ErrorCode.RegistryUnavailable, 'GET https://u:pw-secret@h/v2/ failed', {
    cause,
    hint: 'check https://u:pw-secret@h',
  });
  assert.equal(err.code, 'ERR_REGISTRY_UNAVAILABLE');
  assert.equal(err.cause, cause);
  assert.doesNotMatch(err.message, /pw-secret/);
  assert.doesNotMatch(err.hint ?? '', /pw-secret/);
  const line = describeError(err);
  assert.doesNotMatch(line, /pw-secret/);
  assert.match(line, /hint: check/);
  assert.match(line, /ECONNREFUSED/);
});

test('redact rewrites URL userinfo exactly as the pattern it replaces, without backtracking', () => {
  const pattern = /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(?::[^/\s@]*)?@/gi;
  const pieces = ['a', 'Z', '1', ':', '/', '@', ' ', '+', '.', '-', '://', 'git+ssh://', 'u:p@', '\n'];
  let seed = 11;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    let text = '';
    for (let j = random(16); j > 0; j--) text += pieces[random(pieces.length)];
    assert.equal(redact(text), text.replace(pattern, '$1(redacted)@'), JSON.stringify(text));
  }
});
