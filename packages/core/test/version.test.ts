import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { describeVersion, gcfsVersion } from '../src/index.js';

// dist/test/version.test.js → the repository's root
const ROOT = new URL('../../../../', import.meta.url);

test("gcfsVersion is the root package.json's version and the commit the build was made from", () => {
  const { version: rootVersion } = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
    version: string;
  };
  const { version, commit } = gcfsVersion();
  assert.equal(version, rootVersion);
  // Built from this checkout: a commit of it (HEAD may have moved on since the build).
  assert.match(commit, /^[0-9a-f]{40}$/);
  const type = execFileSync('git', ['cat-file', '-t', commit], { cwd: ROOT, encoding: 'utf8' }).trim();
  assert.equal(type, 'commit');
  assert.equal(describeVersion(), `${version} (commit ${commit})`);
});

test('describeVersion leaves the commit out when the build had none', () => {
  assert.equal(describeVersion({ version: '1.2.3', commit: '' }), '1.2.3');
});
