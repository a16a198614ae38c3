import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { boundText, describeError, ErrorCode, GcfsError, Limits, registerSecret } from '../src/index.js';

test('boundText keeps short texts and cuts long ones with an ellipsis and their length', () => {
  assert.equal(boundText('short'), 'short');
  assert.equal(boundText('x'.repeat(Limits.errorText)), 'x'.repeat(Limits.errorText));
  assert.equal(boundText('abcdef', 3), 'abc… (6 characters)');
  // A surrogate pair is never split.
  assert.equal(boundText('ab😀cd', 3), 'ab… (6 characters)');
});

test('GcfsError messages and describeError stay bounded whatever the input', async () => {
  const long = new GcfsError(ErrorCode.InvalidReference, `bad name ${'z'.repeat(5_000)}`);
  assert.ok(long.message.length < Limits.errorText + 40);
  assert.match(long.message, /… \(5009 characters\)$/);

  // The downloader's case: a path 5,000 directories deep.
  const deep = join(tmpdir(), ...Array.from({ length: 5000 }, () => 'nested'));
  const fsError = await mkdir(deep, { recursive: true }).then(
    () => assert.fail('a 35 KB path should not be creatable'),
    (err: unknown) => err,
  );
  const wrapped = new GcfsError(ErrorCode.LayerWrite, 'cannot write the layer', { cause: fsError });
  const line = describeError(wrapped);
  assert.ok(line.length <= 2 * Limits.errorText + 40, `${line.length} characters`);
  assert.match(line, /^cannot write the layer: ENAMETOOLONG: .*… \(\d+ characters\)$/);
});

test('describeError redacts before it cuts: a secret at the cut is never left half readable', () => {
  const secret = 'hunter2-long-secret';
  registerSecret(secret);
  const cut = Limits.errorText - 5;
  const err = new Error(`${'a'.repeat(cut)}${secret} and more`);
  assert.doesNotMatch(describeError(err), /hunter/);
});
