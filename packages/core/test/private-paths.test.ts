import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  describeTightening,
  ErrorCode,
  ensurePrivateDir,
  ensurePrivateFile,
  GcfsError,
  looseSecretMode,
  onPermissionsTightened,
  type PermissionsTightened,
} from '../src/index.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gcfs-private-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

function collectTightenings(t: TestContext): PermissionsTightened[] {
  const events: PermissionsTightened[] = [];
  t.after(onPermissionsTightened((event) => events.push(event)));
  return events;
}

test('a missing private dir is created 0700 even with a umask of 0; its missing parents 0755', async (t) => {
  const dir = await tempDir(t);
  const events = collectTightenings(t);
  const umask = process.umask(0);
  try {
    assert.equal(await ensurePrivateDir(join(dir, 'a', 'b', 'private')), undefined);
  } finally {
    process.umask(umask);
  }
  assert.equal(await modeOf(join(dir, 'a')), 0o755);
  assert.equal(await modeOf(join(dir, 'a', 'b')), 0o755);
  assert.equal(await modeOf(join(dir, 'a', 'b', 'private')), 0o700);
  assert.deepEqual(events, [], 'creating is not tightening');
});

test('a pre-existing 0755 dir (systemd RuntimeDirectory=, hostPath) is tightened to 0700 and the change published once', async (t) => {
  const dir = await tempDir(t);
  const events = collectTightenings(t);
  const path = join(dir, 'run');
  await mkdir(path);
  await chmod(path, 0o755);
  const expected = { path, from: 0o755, to: 0o700 };
  assert.deepEqual(await ensurePrivateDir(path), expected);
  assert.equal(await modeOf(path), 0o700);
  assert.equal(await ensurePrivateDir(path), undefined, 'nothing left to do the second time');
  assert.deepEqual(events, [expected]);
  assert.equal(describeTightening(expected), `Tightened permissions of ${path} from 0755 to 0700`);
});

test('setgid and sticky bits are taken away too; a dir tighter than 0700 is left as it is', async (t) => {
  const dir = await tempDir(t);
  const shared = join(dir, 'shared');
  await mkdir(shared);
  await chmod(shared, 0o3770);
  assert.deepEqual(await ensurePrivateDir(shared), { path: shared, from: 0o3770, to: 0o700 });
  const tight = join(dir, 'tight');
  await mkdir(tight);
  await chmod(tight, 0o500);
  assert.equal(await ensurePrivateDir(tight), undefined);
  assert.equal(await modeOf(tight), 0o500);
});

test('a private dir is refused when it is a file, belongs to another user, or is shared by the host', async (t) => {
  const dir = await tempDir(t);
  const isConfigError = (pattern: RegExp) => (err: unknown) =>
    err instanceof GcfsError && err.code === ErrorCode.Config && pattern.test(err.message);
  await writeFile(join(dir, 'file'), '');
  await assert.rejects(ensurePrivateDir(join(dir, 'file')), isConfigError(/is not a directory/));
  if (process.geteuid?.() === 0) {
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o755 });
    await chown(theirs, 65534, 65534);
    await assert.rejects(ensurePrivateDir(theirs), isConfigError(/belongs to uid 65534/));
    assert.equal(await modeOf(theirs), 0o755, 'left as it was');
  }
  // Through a link, as --mount_point=/srv/gcfs/mnt with /srv/gcfs -> /tmp would reach it.
  const link = join(dir, 'tmp-link');
  await symlink('/tmp', link);
  await assert.rejects(ensurePrivateDir(link), isConfigError(/shared by the host/));
  assert.equal(await modeOf('/tmp'), 0o1777);
});

test('a private file is tightened to 0600; a key file readable by others is reported, not changed', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'data.mdb');
  await writeFile(path, '', { mode: 0o644 });
  await chmod(path, 0o664);
  assert.deepEqual(await ensurePrivateFile(path), { path, from: 0o664, to: 0o600 });
  assert.equal(await modeOf(path), 0o600);

  const key = join(dir, 'session.key');
  await writeFile(key, 'k');
  await chmod(key, 0o644);
  assert.equal(await looseSecretMode(key), 0o644);
  await chmod(key, 0o640);
  assert.equal(await looseSecretMode(key), 0o640);
  await chmod(key, 0o400);
  assert.equal(await looseSecretMode(key), undefined);
  assert.equal(await modeOf(key), 0o400);
});
