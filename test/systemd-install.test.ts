// deploy/systemd: install.sh into a temporary root (--destdir, as a packager would), the
// installed executables run from there, and systemd's own checker (`systemd-analyze verify`,
// Debian package systemd, installed by scripts/setup) reads every unit against that root, so
// the paths the units name are the ones an install makes. systemd-boot.test.ts runs them.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CFSD_COMMAND } from '@gcfs/cfsd';
import { parseFlags } from '@gcfs/cli';
import { GCFSD_COMMAND } from '@gcfs/gcfsd';
import { tempDirFor } from '@gcfs/testkit';

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL = join(root, 'deploy/systemd/install.sh');
const UNITS = ['gcfsd.service', 'gcfsd-downloader.service', 'cfsd.service'];
const UNIT_DIR = 'usr/local/lib/systemd/system';

async function run(command: string, args: readonly string[]) {
  const { stdout, stderr } = await execFileAsync(command, args, { maxBuffer: 16 * 2 ** 20 });
  return { stdout, stderr };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Every file and symlink under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** The variables of a systemd EnvironmentFile (KEY="value" lines). */
function environmentFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)="?([^"]*)"?$/.exec(line.trim());
    if (match) vars[match[1]!] = match[2]!;
  }
  return vars;
}

/** The executables the workspace packages declare (package.json "bin"). */
async function workspaceBins(): Promise<string[]> {
  const bins: string[] = [];
  for (const pkg of await readdir(join(root, 'packages'))) {
    const manifest = JSON.parse(await readFile(join(root, 'packages', pkg, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>;
    };
    bins.push(...Object.keys(manifest.bin ?? {}));
  }
  return bins.sort();
}

test('install.sh --destdir: /opt/gcfs with production packages and Node 24, links in /usr/local/bin that run, units systemd-analyze accepts, flag files that parse; upgrade keeps the flag files; uninstall leaves nothing', async (t) => {
  await run('systemd-analyze', ['--version']).catch((err: unknown) => {
    throw new Error('systemd-analyze is missing: run scripts/setup (Debian package systemd)', { cause: err });
  });
  const dest = (await tempDirFor(t, 'gcfs-destdir-')).path;
  await run(INSTALL, ['--destdir', dest]);

  // The runtime: the project's Node 24, the packages built, no development dependency.
  const opt = join(dest, 'opt/gcfs');
  const { stdout: nodeVersion } = await run(join(opt, 'node_modules/.bin/node'), ['--version']);
  assert.match(nodeVersion, /^v24\./);
  for (const dev of ['typescript', '@biomejs/biome', '@gcfs/testkit/dist/test']) {
    assert.equal(await exists(join(opt, 'node_modules', dev)), false, `${dev} is not installed`);
  }
  assert.equal(await exists(join(opt, 'packages/gcfsd/dist/src/main.js')), true);
  assert.equal(await exists(join(opt, 'packages/gcfsd/src')), false, 'no TypeScript sources');

  // One link per executable of the workspace, each running from the installed tree.
  const bins = await workspaceBins();
  assert.ok(bins.includes('gcfsd') && bins.includes('cfsd'));
  assert.deepEqual((await readdir(join(dest, 'usr/local/bin'))).sort(), bins);
  for (const bin of bins) {
    assert.match(
      await readlink(join(dest, 'usr/local/bin', bin)),
      /^\.\.\/\.\.\/\.\.\/opt\/gcfs\/packages\//,
    );
    const { stdout } = await run(join(dest, 'usr/local/bin', bin), ['--version']);
    assert.match(stdout, new RegExp(`^${bin} \\d`), `${bin} runs from the installed tree`);
  }
  const gcfsdHelp = await run(join(dest, 'usr/local/bin/gcfsd'), ['--help']);
  assert.match(gcfsdHelp.stdout, /^Usage of gcfsd:/);
  assert.match(gcfsdHelp.stdout, /-downloader_uds_path=/);
  assert.match((await run(join(dest, 'usr/local/bin/cfsd'), ['--help'])).stdout, /^Usage of cfsd:/);
  assert.equal(
    (await run(join(dest, 'usr/local/bin/gcfsd'), ['--version'])).stdout.trim(),
    `gcfsd ${GCFSD_COMMAND.version}`,
  );

  // systemd's checker, with this root: the host's own units (targets) beside ours.
  await mkdir(join(dest, 'usr/lib/systemd'), { recursive: true });
  await cp('/usr/lib/systemd/system', join(dest, 'usr/lib/systemd/system'), { recursive: true });
  for (const unit of UNITS) {
    const verified = await run('systemd-analyze', ['verify', `--root=${dest}`, unit]);
    assert.equal(verified.stderr, '', `${unit}: ${verified.stderr}`);
  }
  // The check is not vacuous: without the executable it names, a unit fails it.
  await rm(join(dest, 'usr/local/bin/cfsd'));
  await assert.rejects(run('systemd-analyze', ['verify', `--root=${dest}`, 'cfsd.service']), (err: Error) =>
    /Command \/usr\/local\/bin\/cfsd is not executable/.test(String((err as { stderr?: string }).stderr)),
  );

  await rm(join(dest, 'usr/lib/systemd'), { recursive: true });

  // The flag files: root's alone, every flag one the executables accept, and both gcfsd
  // processes given the same socket and cache dir.
  const gcfsdEnv = join(dest, 'etc/default/gcfsd');
  assert.equal((await stat(gcfsdEnv)).mode & 0o777, 0o600);
  const env = environmentFile(await readFile(gcfsdEnv, 'utf8'));
  const unitText = await readFile(join(dest, UNIT_DIR, 'gcfsd.service'), 'utf8');
  const downloaderText = await readFile(join(dest, UNIT_DIR, 'gcfsd-downloader.service'), 'utf8');
  for (const name of ['GCFSD_COMMON_FLAGS', 'GCFSD_FLAGS', 'GCFSD_DOWNLOADER_FLAGS']) {
    assert.ok(env[name] !== undefined, `${name} is set`);
    assert.ok(unitText.includes(`$${name}`) || downloaderText.includes(`$${name}`), `${name} is used`);
  }
  const words = (value: string | undefined) => (value ?? '').split(/\s+/).filter(Boolean);
  const server = parseFlags(GCFSD_COMMAND.flags, [
    ...words(env.GCFSD_COMMON_FLAGS),
    ...words(env.GCFSD_FLAGS),
  ]);
  const downloader = parseFlags(GCFSD_COMMAND.flags, [
    '--downloader',
    ...words(env.GCFSD_COMMON_FLAGS),
    ...words(env.GCFSD_DOWNLOADER_FLAGS),
  ]);
  assert.ok(server.action === 'run' && downloader.action === 'run');
  assert.equal(server.values.downloader_uds_path, downloader.values.downloader_uds_path);
  assert.equal(server.values.layer_cache_dir, downloader.values.layer_cache_dir);
  assert.ok(
    server.values.mount_point.startsWith('/run/gcfsd/'),
    'the mount point is in RuntimeDirectory=gcfsd',
  );
  const cfsdEnv = environmentFile(await readFile(join(dest, 'etc/default/cfsd'), 'utf8'));
  const cfsd = parseFlags(CFSD_COMMAND.flags, words(cfsdEnv.CFSD_FLAGS));
  assert.ok(cfsd.action === 'run');
  assert.equal(cfsd.values.store, 'file:///var/lib/cfsd', 'the store is the StateDirectory');

  // Upgrade: a new tree in place, the operator's flags kept, nothing of the old tree left.
  await writeFile(gcfsdEnv, `${await readFile(gcfsdEnv, 'utf8')}# operator's change\n`);
  await run(INSTALL, ['--destdir', dest, '--from', opt]);
  assert.match(await readFile(gcfsdEnv, 'utf8'), /# operator's change/);
  assert.deepEqual((await readdir(join(dest, 'opt'))).sort(), ['gcfs']);
  assert.match((await run(join(dest, 'usr/local/bin/cfsd'), ['--version'])).stdout, /^cfsd /);

  // Uninstall keeps the flag files and state; --purge removes them too.
  await mkdir(join(dest, 'run/gcfsd/mnt'), { recursive: true });
  await writeFile(join(dest, 'run/gcfsd/downloader.sock'), '');
  await mkdir(join(dest, 'var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/layers'), {
    recursive: true,
  });
  await run(INSTALL, ['uninstall', '--destdir', dest]);
  assert.deepEqual(await filesUnder(dest), ['etc/default/cfsd', 'etc/default/gcfsd']);
  assert.equal(await exists(join(dest, 'var/lib/containerd/io.containerd.snapshotter.v1.gcfs')), true);
  await run(INSTALL, ['uninstall', '--destdir', dest, '--purge']);
  assert.deepEqual(await filesUnder(dest), []);
  assert.equal(await exists(join(dest, 'var/lib/containerd/io.containerd.snapshotter.v1.gcfs')), false);
});
