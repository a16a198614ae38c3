import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { curl, type RunningRegistry, startRegistry, type TokenServer } from '../src/index.js';
import { type AuthArgs, bearer, pullBlob, pushBlob } from './blob-with-curl.js';

describe('registry behind the token server', () => {
  let registry: RunningRegistry;
  let tokens: TokenServer;

  before(async () => {
    registry = await startRegistry({
      auth: 'token',
      users: [
        { username: 'alice', password: 'alice-pw' },
        { username: 'bob', password: 'bob-pw' },
      ],
      acl: {
        'private/app': { pull: ['alice'], push: ['alice'] },
        '*': { pull: ['*'], push: ['alice'] },
      },
    });
    tokens = registry.tokenServer!;
  });
  after(() => registry?.stop());

  async function token(scope: string, credentials: AuthArgs = []): Promise<string> {
    const query = new URLSearchParams({ service: tokens.service, scope });
    const res = await curl([...credentials, `${tokens.realm}?${query}`]);
    assert.equal(res.status, 200, res.body.toString());
    const body = JSON.parse(res.body.toString()) as Record<string, unknown>;
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(String(body.issued_at))));
    return String(body.token);
  }

  test('the registry challenges with the realm and service of the token server', async () => {
    const res = await curl([`${registry.url}/v2/`]);
    assert.equal(res.status, 401);
    assert.equal(
      res.headers['www-authenticate'],
      `Bearer realm="${tokens.realm}",service="${tokens.service}"`,
    );
  });

  test('alice pushes and pulls private/app; bob and anonymous callers cannot pull it', async () => {
    const alice = bearer(await token('repository:private/app:pull,push', ['-u', 'alice:alice-pw']));
    const data = randomBytes(500);
    const { digest, finish } = await pushBlob(registry.url, 'private/app', data, alice);
    assert.equal(finish?.status, 201, finish?.body.toString());
    assert.deepEqual((await pullBlob(registry.url, 'private/app', digest, alice)).body, data);

    const bob = bearer(await token('repository:private/app:pull', ['-u', 'bob:bob-pw']));
    const refused = await pullBlob(registry.url, 'private/app', digest, bob);
    assert.equal(refused.status, 401);
    assert.match(refused.headers['www-authenticate'] ?? '', /error="insufficient_scope"/);
    assert.deepEqual(tokens.requests.at(-1)?.granted, []);

    const anonymous = bearer(await token('repository:private/app:pull'));
    assert.equal((await pullBlob(registry.url, 'private/app', digest, anonymous)).status, 401);
    const bobPush = bearer(await token('repository:private/app:push', ['-u', 'bob:bob-pw']));
    assert.equal((await pushBlob(registry.url, 'private/app', data, bobPush)).start.status, 401);
  });

  test('anonymous callers pull public repositories; only alice pushes to them', async () => {
    const alice = bearer(await token('repository:public/base:pull,push', ['-u', 'alice:alice-pw']));
    const data = randomBytes(200);
    const { digest, finish } = await pushBlob(registry.url, 'public/base', data, alice);
    assert.equal(finish?.status, 201);

    const before = tokens.issuedTo(undefined);
    const anonymous = bearer(await token('repository:public/base:pull,push'));
    assert.equal(tokens.issuedTo(undefined), before + 1);
    assert.deepEqual(tokens.requests.at(-1)?.granted, [
      { type: 'repository', name: 'public/base', actions: ['pull'] },
    ]);
    assert.deepEqual((await pullBlob(registry.url, 'public/base', digest, anonymous)).body, data);
    assert.equal((await pushBlob(registry.url, 'public/base', data, anonymous)).start.status, 401);
  });

  test('the realm refuses wrong passwords and unknown users with 401, a wrong service with 400', async () => {
    const query = `service=${tokens.service}&scope=repository:public/base:pull`;
    for (const credentials of ['alice:wrong', 'mallory:alice-pw']) {
      const res = await curl(['-u', credentials, `${tokens.realm}?${query}`]);
      assert.equal(res.status, 401);
      assert.match(res.headers['www-authenticate'] ?? '', /^Basic /);
    }
    const wrongService = await curl([`${tokens.realm}?service=other&scope=repository:public/base:pull`]);
    assert.equal(wrongService.status, 400);
  });

  test('the OAuth2 password grant (POST) issues the same tokens', async () => {
    const res = await curl([
      '--data-urlencode',
      'grant_type=password',
      '--data-urlencode',
      'username=alice',
      '--data-urlencode',
      'password=alice-pw',
      '--data-urlencode',
      `service=${tokens.service}`,
      '--data-urlencode',
      'scope=repository:private/app:pull',
      tokens.realm,
    ]);
    assert.equal(res.status, 200);
    const { access_token } = JSON.parse(res.body.toString()) as { access_token: string };
    const tags = await curl([...bearer(access_token), `${registry.url}/v2/private/app/tags/list`]);
    // Authorized; the repository holds blobs but no tags yet.
    assert.equal(tags.status, 404);
  });

  test('counters record token requests per user', () => {
    assert.ok(tokens.issuedTo('alice') >= 3);
    assert.ok(tokens.issuedTo('bob') >= 2);
    assert.equal(tokens.issuedTo('mallory'), 0);
    assert.ok(tokens.requests.some((r) => r.status === 401));
  });

  test('an expired token is refused (the registry allows 60 s of clock skew)', async (t) => {
    t.after(() => {
      tokens.clockSkewSeconds = 0;
    });
    const scope = 'repository:public/base:pull';
    const access = [{ type: 'repository', name: 'public/base', actions: ['pull'] }];
    const url = `${registry.url}/v2/public/base/tags/list`;
    // Expired 10 s ago: still inside the registry's leeway, so authorized (404: no tags yet).
    const lenient = await curl([...bearer(tokens.issueToken('alice', access, -10)), url]);
    assert.equal(lenient.status, 404);
    // Expired 2 minutes ago: refused as an invalid token.
    const stale = await curl([...bearer(tokens.issueToken('alice', access, -120)), url]);
    assert.equal(stale.status, 401);
    assert.match(stale.headers['www-authenticate'] ?? '', /error="invalid_token"/);
    // Through the realm: a skewed clock hands out tokens that are dead on arrival.
    tokens.clockSkewSeconds = -3600;
    const deadOnArrival = await curl([...bearer(await token(scope, ['-u', 'alice:alice-pw'])), url]);
    assert.equal(deadOnArrival.status, 401);
  });
});
