import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { describeVersion, gcfsVersion } from '@gcfs/core';
import { repoBin, runBin, tempDirFor } from '@gcfs/testkit';
import { GCFSD_FLAGS } from '../src/flags.js';

const BIN = repoBin('gcfsd');

function gcfsd(args: string[], options: { cwd?: string; bin?: string } = {}) {
  return runBin(options.bin ?? BIN, args, { cwd: options.cwd ?? tmpdir() });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

describe('bin/gcfsd', () => {
  it('prints --help listing every flag and exits 0, from another cwd with /usr/bin first on PATH', async (t) => {
    const run = await gcfsd(['--help'], { cwd: (await tempDirFor(t, 'gcfsd-bin-')).path });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    for (const flag of GCFSD_FLAGS) assert.match(run.stdout, new RegExp(`^ {2}-${flag.name}=`, 'm'));
  });

  it('prints the version of gcfs and its commit with -version or --version, the downloader too, exit 0', async () => {
    for (const args of [['-version'], ['--version'], ['--downloader', '--version']]) {
      const run = await gcfsd(args);
      assert.equal(run.code, 0, args.join(' '));
      assert.equal(run.stdout, `gcfsd ${describeVersion()}\n`);
      assert.equal(run.stderr, '');
    }
    assert.match(describeVersion(), /^\d+\.\d+\.\d+ \(commit [0-9a-f]{40}\)$/);
  });

  it('works through a symlink, as npm links it into node_modules/.bin', async (t) => {
    const dir = (await tempDirFor(t, 'gcfsd-bin-')).path;
    const link = join(dir, 'gcfsd');
    await symlink(BIN, link);
    const run = await gcfsd(['--version'], { bin: link, cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^gcfsd /);
  });

  it('exits 2 with one line naming an unknown flag', async () => {
    for (const arg of ['--no_such_flag=1', '-no_such_flag']) {
      const run = await gcfsd([arg]);
      assert.equal(run.code, 2);
      assert.deepEqual(lines(run.stderr), ['gcfsd: unknown flag --no_such_flag']);
      assert.equal(run.stdout, '');
    }
  });

  it('exits 2 with one line naming the flag for a bad duration, int or enum', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['-gc_period=3x'], /^gcfsd: invalid flag --gc_period: "3x" is not a duration/],
      [['--auth_refresh_period', '30'], /^gcfsd: invalid flag --auth_refresh_period: "30" is not a duration/],
      [['--port=http'], /^gcfsd: invalid flag --port: "http" is not an integer$/],
      [['-max_read_blocks', '1.5'], /^gcfsd: invalid flag --max_read_blocks: "1.5" is not an integer$/],
      [
        ['--log_level=verbose'],
        /^gcfsd: invalid flag --log_level: "verbose" must be one of panic, fatal, error, warning, warn, info, debug, trace$/,
      ],
      [['--async_read=maybe'], /^gcfsd: invalid flag --async_read: "maybe" is not a boolean/],
    ];
    for (const [args, expected] of cases) {
      const run = await gcfsd(args);
      assert.equal(run.code, 2, args.join(' '));
      const stderr = lines(run.stderr);
      assert.equal(stderr.length, 1, run.stderr);
      assert.match(stderr[0] ?? '', expected);
    }
  });

  it('never echoes a pull secret given with a bad value', async () => {
    const run = await gcfsd(['--test_pull_secret']);
    assert.equal(run.code, 2);
    assert.deepEqual(lines(run.stderr), ['gcfsd: invalid flag --test_pull_secret: missing value']);
  });

  it('logs its version, the compatibility-only flags given and the effective configuration, then exits 1 when it cannot start', async (t) => {
    // The metrics port taken: gcfsd stops there, before it mounts anything.
    const taken = createServer();
    await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening));
    t.after(() => taken.close());
    const { port } = taken.address() as AddressInfo;
    const mountPoint = join((await tempDirFor(t, 'gcfsd-bin-')).path, 'mnt');
    const run = await gcfsd([
      '-log_level=debug',
      '-log_formatter=json',
      '-gc_period=0',
      `--port=${port}`,
      `--mount_point=${mountPoint}`,
      '--test_pull_secret=someone:Sup3rSecretPw',
      '--max_large_files_cache_size_mb=36',
      '--metrics_flavor=other',
      '--try_direct_path=false',
    ]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.ok(!run.stderr.includes('Sup3rSecretPw'), 'the pull secret reached the log');
    const records = lines(run.stderr).map((l) => JSON.parse(l) as Record<string, unknown>);
    const [start, compatibility, config, fatal] = records;
    assert.equal(records.length, 4, run.stderr);
    assert.equal(start?.msg, 'Starting gcfsd');
    assert.equal(start?.level, 'info');
    assert.deepEqual([start?.version, start?.commit], [gcfsVersion().version, gcfsVersion().commit]);
    assert.match(String(start?.node), /^v24\./, "not run on the project's Node 24");
    assert.equal(compatibility?.level, 'info');
    assert.match(
      String(compatibility?.msg),
      /^Flags accepted for compatibility, without effect: --max_large_files_cache_size_mb \(.+\); --try_direct_path \(.+\); --metrics_flavor \(.+\)$/,
    );
    assert.equal(config?.level, 'debug');
    assert.equal(config?.gc_period, '0s');
    assert.equal(config?.log_level, 'debug');
    assert.equal(config?.mount_point, mountPoint);
    assert.equal(fatal?.level, 'fatal');
    assert.match(String(fatal?.msg), /gcfsd could not start/);
    assert.match(String(fatal?.error), /EADDRINUSE/);
  });
});
