import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoBin, runBin, tempDirFor } from '@gcfs/testkit';
import { renderGcfsctlReference } from '../src/reference.js';
import { COMMANDS, GLOBAL_OPTIONS, VERSION } from '../src/spec.js';

const BIN = repoBin('gcfsctl');
// dist/test/bin.test.js → docs/configuration.md
const DOC = fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url));

function gcfsctl(args: string[], options: { cwd?: string; bin?: string } = {}) {
  return runBin(options.bin ?? BIN, args, { cwd: options.cwd ?? tmpdir() });
}

describe('bin/gcfsctl', () => {
  it('prints its version on Node 24 through a symlink, as npm links it into node_modules/.bin', async (t) => {
    const dir = (await tempDirFor(t, 'gcfsctl-bin-')).path;
    const link = join(dir, 'gcfsctl');
    await symlink(BIN, link);
    const run = await gcfsctl(['--version'], { bin: link, cwd: dir });
    assert.deepEqual(run, { code: 0, stdout: `gcfsctl ${VERSION}\n`, stderr: '' });
  });

  it('prints --help listing every command and option', async () => {
    const run = await gcfsctl(['--help']);
    assert.equal(run.code, 0, run.stderr);
    for (const spec of COMMANDS) assert.ok(run.stdout.includes(`gcfsctl ${spec.command}`), spec.command);
    for (const name of Object.keys(GLOBAL_OPTIONS))
      assert.match(run.stdout, new RegExp(`^ +--${name} `, 'm'));
    const wait = await gcfsctl(['wait', '--help']);
    assert.match(wait.stdout, /^ +--timeout +give up after this long/m);
  });

  it('exits 2 naming the problem for a bad command line, before reaching gcfsd', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /^gcfsctl: give a command$/],
      [['bogus'], /^gcfsctl: Unknown argument: bogus$/],
      [['status', '--no_such_option'], /^gcfsctl: Unknown argument: no_such_option$/],
      [['wait', 'img', '--timeout', '5 minutes'], /^gcfsctl: invalid --timeout "5 minutes": /],
    ];
    for (const [args, expected] of cases) {
      const run = await gcfsctl(['--socket', '/nonexistent/admin.sock', ...args]);
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(run.stdout, '');
      const [first, fix] = run.stderr.split('\n');
      assert.match(first ?? '', expected);
      assert.match(fix ?? '', /^ {2}fix: /);
    }
  });

  it('docs/configuration.md has its section, rendered from the same declarations', () => {
    const section = renderGcfsctlReference();
    assert.ok(readFileSync(DOC, 'utf8').includes(section));
    for (const spec of COMMANDS) assert.ok(section.includes(`| \`gcfsctl ${spec.command}\` |`));
    for (const name of [...Object.keys(GLOBAL_OPTIONS), 'timeout'])
      assert.ok(section.includes(`| \`--${name}\` |`));
  });
});
