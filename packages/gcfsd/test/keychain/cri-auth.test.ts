import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redact } from '@gcfs/core';
import { cri } from '@gcfs/proto';
import { credentialFromCriAuth } from '../../src/keychain/cri-auth.js';

const auth = (fields: Partial<cri.AuthConfig>) => cri.AuthConfig.fromPartial(fields);

describe("CRI auth, read as containerd 1.6's CRI reads it", () => {
  it('takes username and password, else the identity token, else the base64 auth', () => {
    const image = 'r.example:5000/app:v1';
    assert.equal(credentialFromCriAuth(image, undefined), undefined);
    assert.equal(credentialFromCriAuth(image, auth({})), undefined, 'an empty auth is anonymous');
    assert.deepEqual(credentialFromCriAuth(image, auth({ username: 'u', password: 'pw-One-1' })), {
      username: 'u',
      password: 'pw-One-1',
    });
    assert.deepEqual(credentialFromCriAuth(image, auth({ identityToken: 'refresh-Two-2', auth: 'eDp5' })), {
      identityToken: 'refresh-Two-2',
    });
    const encoded = Buffer.from('user:pw:with:colons-3\0\0').toString('base64');
    assert.deepEqual(credentialFromCriAuth(image, auth({ auth: encoded })), {
      username: 'user',
      password: 'pw:with:colons-3',
    });
    assert.throws(() =>
      credentialFromCriAuth(image, auth({ auth: Buffer.from('nocolon').toString('base64') })),
    );
  });

  it('ignores registry_token (as containerd 1.6 does) but redacts it, and an auth for another server', () => {
    const image = 'r.example:5000/app:v1';
    assert.equal(credentialFromCriAuth(image, auth({ registryToken: 'bearer-Only-4' })), undefined);
    assert.equal(redact('token bearer-Only-4'), 'token (redacted)');
    const other = auth({ serverAddress: 'https://other.example/v1/', username: 'u', password: 'pw-Five-5' });
    assert.equal(credentialFromCriAuth(image, other), undefined);
    const same = auth({ serverAddress: 'r.example:5000', username: 'u', password: 'pw-Six-6' });
    assert.equal(credentialFromCriAuth(image, same)?.password, 'pw-Six-6');
    const hub = auth({ serverAddress: 'https://index.docker.io/v1/', username: 'u', password: 'pw-Seven-7' });
    assert.equal(credentialFromCriAuth('busybox:1', hub)?.password, 'pw-Seven-7', "Docker Hub's v1 URL");
  });
});
