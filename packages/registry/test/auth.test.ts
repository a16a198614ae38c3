import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeError, ErrorCode, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { CredentialStore, type RegistryClient, type RegistryEvents } from '../src/index.js';
import { clientFor, pushImage, ref, registryFor } from './fixtures.js';

const alice = { username: 'alice', password: 'alice-pass-7131' };
const bob = { username: 'bob', password: 'bob-pass-9924' };

/** Everything the client told its listeners, as text, to check no secret leaks there. */
function recordEvents(client: RegistryClient): string[] {
  const seen: string[] = [];
  for (const name of ['request', 'retry', 'token', 'fallback', 'resume'] as const) {
    client.on(name, (event: RegistryEvents[typeof name][0]) => seen.push(JSON.stringify(event)));
  }
  return seen;
}

function assertNoSecret(texts: string[], ...secrets: string[]): void {
  for (const text of texts)
    for (const secret of secrets) assert.ok(!text.includes(secret), `leaked in ${text}`);
}

test('htpasswd Basic auth: right credentials pull and push, wrong or none are refused', async (t) => {
  const registry = await registryFor(t, { auth: 'htpasswd', users: [alice] });
  const image = ref(registry.host, 'basic/app');
  const good = clientFor(t, { credentials: { [registry.host]: alice } });
  const pushed = await pushImage(good, image);
  assert.equal((await good.resolve(image)).manifestDigest, pushed.manifestDigest);

  await assert.rejects(clientFor(t).resolve(image), (err) => isGcfsError(err, ErrorCode.Unauthorized));
  const wrong = clientFor(t, {
    credentials: { [registry.host]: { username: 'alice', password: 'wrong-pass-0000' } },
  });
  const events = recordEvents(wrong);
  const err = await wrong.fetchBlob(image, pushed.layers[0]!.descriptor).then(
    () => assert.fail('fetched with a wrong password'),
    (e: unknown) => e,
  );
  assert.ok(isGcfsError(err, ErrorCode.Unauthorized), describeError(err));
  assertNoSecret([describeError(err), JSON.stringify(err.details), ...events], 'wrong-pass-0000');
});

test('token auth with a per-repository ACL', async (t) => {
  const registry = await registryFor(t, {
    auth: 'token',
    users: [alice, bob],
    acl: { 'private/*': { pull: ['alice'], push: ['alice'] }, 'public/*': { pull: ['*'], push: ['alice'] } },
  });
  const tokens = registry.tokenServer!;
  const asAlice = clientFor(t, { credentials: { [registry.host]: alice } });
  const secret = await pushImage(asAlice, ref(registry.host, 'private/app'));
  await pushImage(asAlice, ref(registry.host, 'public/app'));
  assert.equal(
    (await asAlice.resolve(ref(registry.host, 'private/app'))).manifestDigest,
    secret.manifestDigest,
  );
  assert.ok(tokens.issuedTo('alice') >= 2, 'alice got tokens for pull,push and pull');

  // Another valid user and an anonymous caller get nothing from the private repository.
  for (const client of [clientFor(t, { credentials: { [registry.host]: bob } }), clientFor(t)]) {
    await assert.rejects(
      client.resolve(ref(registry.host, 'private/app')),
      (err) => isGcfsError(err) && (err.code === ErrorCode.Denied || err.code === ErrorCode.Unauthorized),
    );
    await assert.rejects(
      client.fetchBlob(ref(registry.host, 'private/app'), secret.layers[0]!.descriptor),
      (err) => isGcfsError(err) && (err.code === ErrorCode.Denied || err.code === ErrorCode.Unauthorized),
    );
    // ...but may pull the public one.
    assert.ok((await client.resolve(ref(registry.host, 'public/app'))).manifest.layers.length > 0);
  }
  assert.ok(tokens.issuedTo('bob') >= 1);
  assert.ok(tokens.issuedTo(undefined) >= 1);

  // A wrong password is refused by the token server itself, and never shows in the error.
  const wrong = clientFor(t, {
    credentials: { [registry.host]: { username: 'bob', password: 'not-bobs-5555' } },
  });
  const events = recordEvents(wrong);
  const err = await wrong.resolve(ref(registry.host, 'public/app')).then(
    () => assert.fail('resolved with a wrong password'),
    (e: unknown) => e,
  );
  assert.ok(isGcfsError(err, ErrorCode.Unauthorized), describeError(err));
  assertNoSecret([describeError(err), ...events], 'not-bobs-5555');
});

test('token expiry: cached tokens are renewed before expiry, and after a 401', async (t) => {
  const registry = await registryFor(t, { auth: 'token', users: [alice], tokenLifetimeSeconds: 1 });
  const tokens = registry.tokenServer!;
  const client = clientFor(t, { credentials: { [registry.host]: alice } });
  const image = ref(registry.host, 'expiry/app');
  const pushed = await pushImage(client, image);
  const layer = pushed.layers[0]!.descriptor;

  await client.fetchBlob(image, layer);
  const before = tokens.issuedTo('alice');
  await client.fetchBlob(image, layer);
  assert.equal(tokens.issuedTo('alice'), before, 'a live token is reused');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await client.fetchBlob(image, layer);
  assert.equal(tokens.issuedTo('alice'), before + 1, 'an expired token is replaced up front');

  // Tokens the registry refuses (dead on arrival) although expires_in says they are fine.
  tokens.lifetimeSeconds = 300;
  tokens.clockSkewSeconds = -3600;
  const stale = clientFor(t, { credentials: { [registry.host]: alice } });
  await assert.rejects(stale.fetchBlob(image, layer), (err) => isGcfsError(err, ErrorCode.Unauthorized));
  const afterRefusal = tokens.issuedTo('alice');
  tokens.clockSkewSeconds = 0;
  // The cached (dead) token gets a 401: it is dropped and a new one fetched, once.
  assert.deepEqual(await stale.fetchBlob(image, layer), pushed.layers[0]!.bytes);
  assert.equal(tokens.issuedTo('alice'), afterRefusal + 1);
});

test('credentials from a Docker config.json (auths) and from a credential helper', async (t) => {
  const registry = await registryFor(t, { auth: 'token', users: [alice], acl: { '*': { '*': ['alice'] } } });
  const image = ref(registry.host, 'config/app');
  const pushed = await pushImage(clientFor(t, { credentials: { [registry.host]: alice } }), image);
  const dir = await tempDirFor(t, 'gcfs-docker-config-');

  const configPath = join(dir.path, 'config.json');
  const auth = Buffer.from(`${alice.username}:${alice.password}`).toString('base64');
  await writeFile(configPath, JSON.stringify({ auths: { [`http://${registry.host}`]: { auth } } }));
  const fromAuths = clientFor(t, { credentials: await CredentialStore.fromDockerConfig(configPath) });
  assert.equal((await fromAuths.resolve(image)).manifestDigest, pushed.manifestDigest);

  const helper = join(dir.path, 'docker-credential-test');
  await writeFile(
    helper,
    `#!/bin/sh\nread -r host\n[ "$host" = "${registry.host}" ] || { echo "credentials not found"; exit 1; }\n` +
      `echo '{"Username":"${alice.username}","Secret":"${alice.password}"}'\n`,
  );
  await chmod(helper, 0o755);
  const helperConfig = join(dir.path, 'helper.json');
  await writeFile(helperConfig, JSON.stringify({ credHelpers: { [registry.host]: 'test' } }));
  const store = await CredentialStore.fromDockerConfig(helperConfig, {
    env: { PATH: `${dir.path}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  const fromHelper = clientFor(t, { credentials: store });
  assert.deepEqual(await fromHelper.fetchBlob(image, pushed.layers[1]!.descriptor), pushed.layers[1]!.bytes);
});
