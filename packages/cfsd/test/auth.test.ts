import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { containerfs as pb } from '@gcfs/proto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ALICE, BOB, privateRegistry, pushBuilt, runCfsd } from './harness.js';

const layerOf = (name: string) => ({
  compression: 'gzip' as const,
  entries: [{ type: 'file' as const, path: `${name}.txt`, content: `${name} secret content\n`.repeat(100) }],
});

async function rejectsWith(promise: Promise<unknown>, code: GrpcStatus, what: string) {
  await assert.rejects(promise, (err: { code?: number; details?: string }) => {
    assert.equal(err.code, code, `${what}: got ${GrpcStatus[err.code ?? -1]}: ${err.details}`);
    return true;
  });
}

test('the service serves an image only to callers the registry lets pull it', async (t) => {
  const registry = await privateRegistry(t);
  const secret = await pushBuilt(t, registry, 'private/app', { layers: [layerOf('private')] });
  const open = await pushBuilt(t, registry, 'public/app', { layers: [layerOf('public')] });
  const { client } = await runCfsd(t);

  const alice = await client.authImage({ image: secret.image, credentials: ALICE, wait: true });
  assert.equal(alice.status, pb.ImageStatus.IMAGE_STATUS_READY);
  const secretLayer = alice.layers[0]!.digest;

  await rejectsWith(
    client.authImage({ image: secret.image, credentials: BOB }),
    GrpcStatus.PERMISSION_DENIED,
    'bob',
  );
  await rejectsWith(
    client.authImage({ image: secret.image, credentials: { ...ALICE, password: 'wrong' } }),
    GrpcStatus.UNAUTHENTICATED,
    'wrong password',
  );
  await assert.rejects(client.authImage({ image: secret.image }), (err: { code?: number }) =>
    [GrpcStatus.UNAUTHENTICATED, GrpcStatus.PERMISSION_DENIED].includes(err.code!),
  );

  // An anonymous caller may pull the public image, and gets a session for that image only.
  const anon = await client.authImage({ image: open.image, wait: true });
  assert.equal(anon.status, pb.ImageStatus.IMAGE_STATUS_READY);
  const read = { firstBlock: 0, count: 1 };
  const ok = await client.readBlocks({
    sessionToken: anon.sessionToken,
    layerDigest: anon.layers[0]!.digest,
    ...read,
  });
  assert.equal(ok.blocks.length, 1);
  await rejectsWith(
    client.readBlocks({ sessionToken: anon.sessionToken, layerDigest: secretLayer, ...read }),
    GrpcStatus.PERMISSION_DENIED,
    'public token reading the private layer',
  );
  await rejectsWith(client.layerIndex(anon.sessionToken, secretLayer), GrpcStatus.PERMISSION_DENIED, 'index');

  // Forged and tampered tokens read nothing.
  for (const token of [
    '',
    'garbage',
    `${alice.sessionToken.split('.')[0]}.AAAA`,
    // The MAC's first character: its last one carries two padding bits a decoder ignores.
    anon.sessionToken.replace(/\.(.)/, (_, c) => (c === 'A' ? '.B' : '.A')),
  ]) {
    await rejectsWith(
      client.readBlocks({ sessionToken: token, layerDigest: secretLayer, ...read }),
      GrpcStatus.UNAUTHENTICATED,
      `token ${token}`,
    );
  }
  // A token claiming another image (re-signed bodies are impossible without the key).
  const [body, mac] = anon.sessionToken.split('.');
  const claims = JSON.parse(Buffer.from(body!, 'base64url').toString());
  claims.m = alice.manifestDigest;
  const forged = `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${mac}`;
  await rejectsWith(
    client.readBlocks({ sessionToken: forged, layerDigest: secretLayer, ...read }),
    GrpcStatus.UNAUTHENTICATED,
    'forged claims',
  );
});

test('an expired session token is refused', async (t) => {
  const registry = await privateRegistry(t);
  const { image } = await pushBuilt(t, registry, 'public/short', { layers: [layerOf('short')] });
  const { client } = await runCfsd(t, { sessionTtlMs: 1000 });
  const auth = await client.authImage({ image, wait: true });
  const read = {
    sessionToken: auth.sessionToken,
    layerDigest: auth.layers[0]!.digest,
    firstBlock: 0,
    count: 1,
  };
  assert.equal((await client.readBlocks(read)).blocks.length, 1);
  assert.ok(auth.expiresAtUnixMs <= Date.now() + 1000);
  await delay(auth.expiresAtUnixMs - Date.now() + 100);
  await rejectsWith(client.readBlocks(read), GrpcStatus.UNAUTHENTICATED, 'expired');
  // A new AuthImage gives a working session again.
  const again = await client.authImage({ image, wait: true });
  assert.equal((await client.readBlocks({ ...read, sessionToken: again.sessionToken })).blocks.length, 1);
});
