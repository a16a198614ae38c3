import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, redact } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { RecordedCredentials, repositoryKey } from '../../src/keychain/recorded-credentials.js';

const HOUR = 3_600_000;
const quiet = createLogger({ level: 'fatal' });

function clock(start = 1_000_000) {
  const c = {
    now: start,
    tick: (ms: number) => {
      c.now += ms;
    },
  };
  return c;
}

describe('recorded credentials (the keychain store)', () => {
  it('keys by registry/repository: every tag and digest of the repository matches, other repositories do not', async () => {
    assert.equal(repositoryKey('localhost:5000/app:v1'), 'localhost:5000/app');
    assert.equal(repositoryKey(`localhost:5000/app@sha256:${'a'.repeat(64)}`), 'localhost:5000/app');
    assert.equal(repositoryKey('busybox'), 'docker.io/library/busybox');
    const store = await RecordedCredentials.open({ path: undefined, ttlMs: HOUR, logger: quiet });
    await store.record('localhost:5000/app:v1', { username: 'alice', password: 'alicePw-1234' });
    assert.deepEqual(store.get(`localhost:5000/app@sha256:${'b'.repeat(64)}`), {
      username: 'alice',
      password: 'alicePw-1234',
    });
    assert.equal(store.get('localhost:5000/other:v1'), undefined);
    assert.equal(store.get('localhost:5001/app:v1'), undefined, 'same repository on another registry');
  });

  it('expires an entry ttl after its last pull; a later pull renews it', async () => {
    const time = clock();
    const store = await RecordedCredentials.open({
      path: undefined,
      ttlMs: HOUR,
      logger: quiet,
      now: () => time.now,
    });
    await store.record('r.example/app:v1', { username: 'u', password: 'renewedPw-1' });
    time.tick(HOUR - 1);
    await store.record('r.example/app:v2', { username: 'u', password: 'renewedPw-1' });
    time.tick(HOUR - 1);
    assert.ok(store.get('r.example/app:v1'), 'renewed by the second pull');
    time.tick(1);
    assert.equal(store.get('r.example/app:v1'), undefined);
    assert.equal(store.size, 0);
  });

  it('persists to a 0600 file that a restarted gcfsd reads back, dropping what expired meanwhile', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'keychain.json');
    const time = clock();
    const options = { path, ttlMs: HOUR, logger: quiet, now: () => time.now };
    const first = await RecordedCredentials.open(options);
    await first.record('r.example/long:v1', { username: 'u', password: 'longLived-99' });
    time.tick(HOUR / 2);
    await first.record('r.example/short:v1', { identityToken: 'refresh-token-77' });
    await first.flush();
    assert.equal((await stat(path)).mode & 0o777, 0o600);

    // A SIGKILL-ed gcfsd leaves only the file: a new store reads it.
    time.tick(HOUR / 2);
    const second = await RecordedCredentials.open(options);
    assert.equal(second.get('r.example/long:v1'), undefined, 'expired while gcfsd was down');
    assert.deepEqual(second.get('r.example/short:v9'), { identityToken: 'refresh-token-77' });
    assert.equal(second.size, 1);
  });

  it('writes a renewal of the same credential only once the file lags by a tenth of the TTL', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'keychain.json');
    const time = clock();
    const store = await RecordedCredentials.open({ path, ttlMs: HOUR, logger: quiet, now: () => time.now });
    const saved = async () => JSON.parse(await readFile(path, 'utf8')).entries['r.example/app'].expiresAt;
    await store.record('r.example/app:v1', { username: 'u', password: 'samePass-8' });
    const first = await saved();
    time.tick(HOUR / 20);
    await store.record('r.example/app:v1', { username: 'u', password: 'samePass-8' });
    await store.flush();
    assert.equal(await saved(), first, 'no write for a recent renewal');
    time.tick(HOUR / 10);
    await store.record('r.example/app:v1', { username: 'u', password: 'samePass-8' });
    await store.flush();
    assert.equal(await saved(), time.now + HOUR);
  });

  it('undoes a record whose pull failed, back to the credential before it', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'keychain.json');
    const store = await RecordedCredentials.open({ path, ttlMs: HOUR, logger: quiet });
    await store.record('r.example/app:v1', { username: 'u', password: 'goodPass-1' });
    const undo = await store.record('r.example/app:v1', { username: 'u', password: 'wrongPass-2' });
    await undo();
    assert.equal(store.get('r.example/app:v1')?.password, 'goodPass-1');
    const reopened = await RecordedCredentials.open({ path, ttlMs: HOUR, logger: quiet });
    assert.equal(reopened.get('r.example/app:v1')?.password, 'goodPass-1');

    // A newer record is not undone by an older pull's failure.
    const stale = await store.record('r.example/new:v1', { username: 'u', password: 'firstPass-3' });
    await store.record('r.example/new:v1', { username: 'u', password: 'secondPass-4' });
    await stale();
    assert.equal(store.get('r.example/new:v1')?.password, 'secondPass-4');
    await store.forget('r.example/new:v1');
    assert.equal(store.get('r.example/new:v1'), undefined);
  });

  it('registers every secret it records or reads back for redaction', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'keychain.json');
    const expiresAt = Date.now() + HOUR;
    await writeFile(
      path,
      JSON.stringify({
        v: 1,
        entries: { 'r.example/app': { credential: { password: 'fromDisk-Secret-5' }, expiresAt } },
      }),
      { mode: 0o644 },
    );
    const store = await RecordedCredentials.open({ path, ttlMs: HOUR, logger: quiet });
    await store.record('r.example/b:v1', { identityToken: 'recorded-Token-6' });
    assert.equal(redact('x fromDisk-Secret-5 recorded-Token-6 y'), 'x (redacted) (redacted) y');
    assert.equal((await stat(path)).mode & 0o777, 0o600, 'a loose file is tightened');
  });

  it('ignores a damaged file (logged), and replaces it with the next record', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'keychain.json');
    await writeFile(path, '{"v":1,"entries":', { mode: 0o600 });
    const store = await RecordedCredentials.open({ path, ttlMs: HOUR, logger: quiet });
    assert.equal(store.size, 0);
    await store.record('r.example/app:v1', { username: 'u', password: 'afterDamage-7' });
    assert.equal(JSON.parse(await readFile(path, 'utf8')).v, 1);
  });
});
