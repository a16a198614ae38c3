import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderGcfsctlReference } from '../src/reference.js';
import { COMMANDS, GLOBAL_OPTIONS, VERSION } from '../src/spec.js';

// dist/test/bin.test.js → packages/gcfsctl/bin/gcfsctl
const BIN = fileURLToPath(new URL('../../bin/gcfsctl', import.meta.url));
const DOC = fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url));
// The machine's PATH puts Debian's Node 20 first: the bin must not use it.
const ENV = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gcfsctl-bin-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function gcfsctl(args: string[], options: { cwd?: string; bin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      options.bin ?? BIN,
      args,
      // the timeout only stops a hung child from hanging the suite
      { cwd: options.cwd ?? tmpdir(), env: ENV, timeout: 60_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        if (typeof code !== 'number') reject(err);
        else resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('bin/gcfsctl', () => {
  it('prints its version on Node 24 through a symlink, as npm links it into node_modules/.bin', async (t) => {
    const dir = await tempDir(t);
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
