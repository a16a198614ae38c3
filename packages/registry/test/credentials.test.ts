import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeError, ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { CredentialStore } from '../src/index.js';

/** A docker-credential-<name> script answering from a fixed table of server → JSON. */
async function writeHelper(dir: string, name: string, answers: Record<string, string>): Promise<void> {
  const cases = Object.entries(answers)
    .map(([server, json]) => `  ${JSON.stringify(server)}) echo '${json}' ;;`)
    .join('\n');
  const script = `#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
echo "$server" >> "$(dirname "$0")/${name}.calls"
case "$server" in
${cases}
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  const path = join(dir, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
}

test('auths: base64 auth, username/password, identity tokens, Docker Hub aliases', async () => {
  const store = new CredentialStore({
    config: {
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub-pass-1234').toString('base64') },
        'registry.example:5000': { username: 'u2', password: 'p2-secret-5678' },
        'https://tok.example/': { identitytoken: 'refresh-abcdefgh' },
        'empty.example': {},
      },
    },
    explicit: { 'registry.example:5000': { username: 'override', password: 'override-pass' } },
  });
  assert.deepEqual(await store.get('docker.io'), { username: 'hubuser', password: 'hub-pass-1234' });
  assert.deepEqual(await store.get('registry-1.docker.io'), {
    username: 'hubuser',
    password: 'hub-pass-1234',
  });
  assert.deepEqual(await store.get('registry.example:5000'), {
    username: 'override',
    password: 'override-pass',
  });
  assert.deepEqual(await store.get('tok.example'), { identityToken: 'refresh-abcdefgh' });
  assert.equal(await store.get('empty.example'), undefined);
  assert.equal(await store.get('other.example'), undefined);
  // Every secret the store learnt is redacted from any error text.
  const err = new GcfsError(ErrorCode.Internal, 'saw hub-pass-1234 and p2-secret-5678 and refresh-abcdefgh');
  assert.doesNotMatch(describeError(err), /hub-pass|p2-secret|refresh-abc/);
});

test('credHelpers per host and credsStore as default, run through PATH', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cred-');
  await writeHelper(dir.path, 'perhost', {
    'r.example:5000': '{"ServerURL":"r.example:5000","Username":"helper-user","Secret":"helper-secret-1"}',
  });
  await writeHelper(dir.path, 'store', {
    'https://index.docker.io/v1/': '{"Username":"<token>","Secret":"identity-from-store"}',
  });
  const store = new CredentialStore({
    config: { credHelpers: { 'r.example:5000': 'perhost' }, credsStore: 'store' },
    env: { PATH: `${dir.path}:/usr/bin:/bin` },
  });
  assert.deepEqual(await store.get('r.example:5000'), {
    username: 'helper-user',
    password: 'helper-secret-1',
  });
  assert.deepEqual(await store.get('docker.io'), { identityToken: 'identity-from-store' });
  assert.equal(await store.get('nothing.example'), undefined, '"credentials not found" means anonymous');
  assert.doesNotMatch(describeError(new Error('leak helper-secret-1')), /helper-secret-1/);
});

test('a missing or failing helper is a clear ERR_CREDENTIAL_HELPER', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cred-');
  await writeFile(
    join(dir.path, 'docker-credential-broken'),
    '#!/bin/sh\necho "keychain locked" >&2\nexit 2\n',
  );
  await chmod(join(dir.path, 'docker-credential-broken'), 0o755);
  const env = { PATH: dir.path };
  const missing = new CredentialStore({ config: { credsStore: 'absent' }, env });
  await assert.rejects(
    missing.get('r.example'),
    (err) => isGcfsError(err, ErrorCode.CredentialHelper) && /docker-credential-absent/.test(err.message),
  );
  const broken = new CredentialStore({ config: { credHelpers: { 'r.example': 'broken' } }, env });
  await assert.rejects(
    broken.get('r.example'),
    (err) => isGcfsError(err, ErrorCode.CredentialHelper) && /keychain locked/.test(err.message),
  );
});

test('fromDockerConfig: a missing file means no credentials, bad JSON is ERR_CONFIG without secrets', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cred-');
  assert.equal(
    await (await CredentialStore.fromDockerConfig(join(dir.path, 'none.json'))).get('x.example'),
    undefined,
  );
  const bad = join(dir.path, 'bad.json');
  await writeFile(bad, '{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVlLTk5"');
  await assert.rejects(
    CredentialStore.fromDockerConfig(bad),
    (err) => isGcfsError(err, ErrorCode.Config) && !describeError(err).includes('c2VjcmV0'),
  );
  const good = join(dir.path, 'config.json');
  await writeFile(
    good,
    JSON.stringify({ auths: { 'x.example': { username: 'a', password: 'b-pass-0000' } } }),
  );
  assert.deepEqual(await (await CredentialStore.fromDockerConfig(good)).get('x.example'), {
    username: 'a',
    password: 'b-pass-0000',
  });
});
