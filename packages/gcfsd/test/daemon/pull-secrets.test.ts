import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, isGcfsError, redact } from '@gcfs/core';
import { CredentialStore, parseReference } from '@gcfs/registry';
import { tempDirFor } from '@gcfs/testkit';
import { PullSecrets, parseAddPullSecret, parseTestPullSecret } from '../../src/daemon/pull-secrets.js';

const JSON_KEY = JSON.stringify({
  type: 'service_account',
  private_key: 'PRIVATE-KEY-Zq81xw',
  client_email: 'a@b',
});

function refusedWithout(secret: string) {
  return (err: unknown) => {
    assert.ok(isGcfsError(err, ErrorCode.InvalidFlag), String(err));
    assert.ok(
      !err.message.includes(secret) && !String(err.hint).includes(secret),
      'the secret is in the error',
    );
    return true;
  };
}

describe('pull secrets', () => {
  it('parses every GKE format, inline', async () => {
    const token = await parseAddPullSecret('gcr.io/proj/app,oauth2accesstoken:ya29.tokenValue123');
    assert.deepEqual(token, {
      scope: 'gcr.io/proj/app',
      credential: { username: 'oauth2accesstoken', password: 'ya29.tokenValue123' },
    });
    const key = await parseAddPullSecret(`europe-docker.pkg.dev/p/r,_json_key:${JSON_KEY}`);
    assert.deepEqual(key.credential, { username: '_json_key', password: JSON_KEY });
    const b64 = Buffer.from(JSON_KEY).toString('base64');
    const keyB64 = await parseAddPullSecret(`gcr.io,_json_key_base64:${b64}`);
    assert.deepEqual(keyB64, {
      scope: 'gcr.io',
      credential: { username: '_json_key_base64', password: b64 },
    });
    // Docker Hub short names are normalized like any reference.
    assert.equal(
      (await parseAddPullSecret('busybox,oauth2accesstoken:tok12345')).scope,
      'docker.io/library/busybox',
    );
  });

  it('reads the value from a file with file:', async (t) => {
    const dir = await tempDirFor(t);
    const tokenFile = join(dir.path, 'token');
    const keyFile = join(dir.path, 'key.json');
    await writeFile(tokenFile, 'ya29.fromFileToken\n');
    await writeFile(keyFile, JSON_KEY);
    const token = await parseAddPullSecret(`gcr.io/p,file:oauth2accesstoken:${tokenFile}`);
    assert.equal(token.credential.password, 'ya29.fromFileToken');
    const key = await parseAddPullSecret(`gcr.io/p,file:_json_key:${keyFile}`);
    assert.equal(key.credential.password, JSON_KEY);
    await assert.rejects(
      parseAddPullSecret(`gcr.io/p,file:oauth2accesstoken:${join(dir.path, 'missing')}`),
      (err: unknown) => isGcfsError(err, ErrorCode.InvalidFlag) && /cannot read/.test(err.message),
    );
  });

  it('refuses malformed secrets without quoting them', async () => {
    await assert.rejects(
      parseAddPullSecret('oauth2accesstoken:Secr3tNoImage'),
      refusedWithout('Secr3tNoImage'),
    );
    await assert.rejects(parseAddPullSecret('gcr.io/p,password:Secr3tKind'), refusedWithout('Secr3tKind'));
    await assert.rejects(parseAddPullSecret('gcr.io/p,_json_key:{notjson-Secr3t'), refusedWithout('Secr3t'));
    await assert.rejects(
      parseAddPullSecret('gcr.io/p,_json_key_base64:bm90anNvbg=='),
      refusedWithout('bm90anNvbg'),
    );
    await assert.rejects(parseAddPullSecret('gcr.io/p,oauth2accesstoken:'), refusedWithout('gcr.io/p'));
    assert.throws(() => parseTestPullSecret('no-colon-Secr3t'), refusedWithout('Secr3t'));
    assert.throws(() => parseTestPullSecret('someone:'), refusedWithout('someone'));
  });

  it('registers every secret it reads, so logs never carry it', async () => {
    await parseAddPullSecret('gcr.io/p,oauth2accesstoken:ya29.neverLogged777');
    parseTestPullSecret('tester:TestPw-neverLogged');
    assert.equal(redact('token ya29.neverLogged777 pw TestPw-neverLogged'), 'token (redacted) pw (redacted)');
  });

  it('picks the image secret, then the test secret, then the Docker config, then anonymous', async () => {
    const imageSecret = await parseAddPullSecret('127.0.0.1:5000/team,oauth2accesstoken:teamToken1');
    const docker = new CredentialStore({
      config: { auths: { '127.0.0.2:5000': { username: 'dock', password: 'dockPw12' } } },
    });
    const secrets = new PullSecrets(imageSecret, undefined, docker);
    assert.deepEqual(await secrets.forImage('127.0.0.1:5000/team/app:v1'), {
      credential: { username: 'oauth2accesstoken', password: 'teamToken1' },
      origin: 'add_pull_secret',
    });
    // A name that merely starts with the same letters is another repository.
    assert.equal((await secrets.forImage('127.0.0.1:5000/teammate/app:v1')).origin, 'anonymous');
    assert.deepEqual(await secrets.forImage(`127.0.0.2:5000/x@sha256:${'b'.repeat(64)}`), {
      credential: { username: 'dock', password: 'dockPw12' },
      origin: 'docker_config',
    });
    const withTest = new PullSecrets(imageSecret, parseTestPullSecret('u:testPw99'), docker);
    assert.equal((await withTest.forImage('127.0.0.1:5000/team/app')).origin, 'add_pull_secret');
    assert.deepEqual(await withTest.forImage('127.0.0.2:5000/x:1'), {
      credential: { username: 'u', password: 'testPw99' },
      origin: 'test_pull_secret',
    });
    const registryWide = new PullSecrets(
      await parseAddPullSecret('127.0.0.1:5000,oauth2accesstoken:hostTok1'),
    );
    assert.equal((await registryWide.forImage('127.0.0.1:5000/any/thing:1')).origin, 'add_pull_secret');
  });

  it("puts the keychain's credential for the image's repository before every other source", async () => {
    const keychain = new Map([['127.0.0.1:5000/team/app', { username: 'pod', password: 'podSecret-1' }]]);
    const secrets = new PullSecrets(
      await parseAddPullSecret('127.0.0.1:5000/team,oauth2accesstoken:teamToken1'),
      parseTestPullSecret('u:testPw99'),
      undefined,
      {
        get: (image) => keychain.get(`${parseReference(image).registry}/${parseReference(image).repository}`),
      },
    );
    assert.deepEqual(await secrets.forImage(`127.0.0.1:5000/team/app@sha256:${'c'.repeat(64)}`), {
      credential: { username: 'pod', password: 'podSecret-1' },
      origin: 'keychain',
    });
    // Another repository under the same scope: the flags decide, as without the keychain.
    assert.equal((await secrets.forImage('127.0.0.1:5000/team/other:v1')).origin, 'add_pull_secret');
    assert.equal((await secrets.forImage('127.0.0.9:5000/x:v1')).origin, 'test_pull_secret');
  });

  it('reads the Docker config named by the flags helper', async (t) => {
    const dir = await tempDirFor(t);
    const config = join(dir.path, 'config.json');
    const auth = Buffer.from('cfg:cfgPw-123').toString('base64');
    await writeFile(config, JSON.stringify({ auths: { '127.0.0.3:5000': { auth } } }));
    const secrets = await PullSecrets.fromFlags({ add_pull_secret: '', test_pull_secret: '' }, config);
    assert.deepEqual(await secrets.forImage('127.0.0.3:5000/app:1'), {
      credential: { username: 'cfg', password: 'cfgPw-123' },
      origin: 'docker_config',
    });
  });
});
