import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isGcfsError, Limits } from '@gcfs/core';
import { matchesFilter, parseFilters } from '../src/filters.js';

const nameIs = (name: string) => (path: readonly string[]) => (path.join('.') === 'name' ? name : undefined);

test('~= patterns use Go (RE2) syntax and semantics, as containerd does', () => {
  assert.ok(matchesFilter(parseFilters(['name~=^[kv]\\d']), nameIs('k2')));
  assert.ok(!matchesFilter(parseFilters(['name~=^[kv]\\d']), nameIs('x2')));
  // RE2 has no backreferences or lookaround: refused as containerd refuses them
  for (const bad of ['name~=(a)\\1', 'name~=a(?=b)']) {
    assert.throws(
      () => parseFilters([bad]),
      (err) => isGcfsError(err, ErrorCode.InvalidArgument),
    );
  }
});

test('a pattern that backtracks exponentially elsewhere matches in linear time', () => {
  // With a backtracking engine this takes 2^40 steps; RE2 does it in one pass.
  const filter = parseFilters(['name~=^(a+)+$']);
  assert.equal(matchesFilter(filter, nameIs(`${'a'.repeat(40)}!`)), false);
  assert.equal(matchesFilter(filter, nameIs('a'.repeat(40))), true);
});

test('an over-long filter is refused before it is parsed', () => {
  assert.throws(
    () => parseFilters([`name==${'x'.repeat(1024 * 1024)}`]),
    (err) => isGcfsError(err, ErrorCode.InvalidArgument) && err.message.length < Limits.quoted + 200,
  );
});
