import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkCredentialLengths,
  checkLength,
  ErrorCode,
  type GcfsError,
  Limits,
  quote,
} from '../src/index.js';

test('quote keeps untrusted text in messages short', () => {
  assert.equal(quote('abc'), '"abc"');
  const long = quote('z'.repeat(1_000_000));
  assert.ok(long.length < Limits.quoted + 30, long);
  assert.match(long, /^"z+"… \(1000000 characters\)$/);
});

test('checkLength refuses over-long text with a short message', () => {
  assert.equal(checkLength('image', 'x', 255), 'x');
  assert.throws(
    () => checkLength('image', 'x'.repeat(3 << 20), Limits.reference),
    (err: GcfsError) =>
      err.code === ErrorCode.InvalidArgument &&
      /^image is 3145728 characters long, more than 520: "x+"…/.test(err.message) &&
      err.message.length < 2 * Limits.quoted,
  );
  assert.throws(() => checkLength('flag --x', 'yy', 1, { code: ErrorCode.InvalidFlag }), {
    code: ErrorCode.InvalidFlag,
  });
});

test('over-long credentials are refused without quoting them', () => {
  const password = `hunter2${'p'.repeat(Limits.credential)}`;
  assert.throws(
    () => checkCredentialLengths('credentials', { username: 'alice', password }),
    (err: GcfsError) =>
      err.message ===
      `credentials.password is ${password.length} characters long, more than ${Limits.credential}`,
  );
  checkCredentialLengths('credentials', undefined);
  checkCredentialLengths('credentials', { username: 'alice', password: 'pw', identityToken: '' });
});
