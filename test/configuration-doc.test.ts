import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CFSD_COMMAND } from '@gcfs/cfsd';
import { GCFSD_COMMAND } from '@gcfs/gcfsd';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('docs/configuration.md is what the generator writes from the flag tables', () => {
  const check = spawnSync(process.execPath, ['scripts/gen-docs.mjs', '--check'], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(check.status, 0, check.stderr);
});

test('docs/configuration.md documents every flag of every executable', () => {
  const doc = readFileSync(`${root}/docs/configuration.md`, 'utf8');
  for (const spec of [GCFSD_COMMAND, CFSD_COMMAND]) {
    assert.match(doc, new RegExp(`^## ${spec.program}$`, 'm'));
    for (const flag of spec.flags)
      assert.ok(doc.includes(`| \`--${flag.name}\` |`), `${spec.program} --${flag.name}`);
  }
});
