import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describeVersion, gcfsVersion } from '@gcfs/core';
import { containerfs, health } from '@gcfs/proto';
import {
  curl,
  freePort,
  selfSignedCertificate,
  startProcess,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { credentials } from '@grpc/grpc-js';
import { ALICE, connect, pushBuilt, runCfsd } from './harness.js';

const CFSD_BIN = fileURLToPath(new URL('../../bin/cfsd', import.meta.url));
const simple = {
  layers: [{ compression: 'gzip' as const, entries: [{ type: 'file' as const, path: 'a', content: 'a\n' }] }],
};

test('open and htpasswd registries: AuthImage with the caller own credentials', async (t) => {
  for (const auth of ['none', 'htpasswd'] as const) {
    const registry = await startRegistry({ auth, users: [ALICE] });
    t.after(() => registry.stop());
    const { image } = await pushBuilt(t, registry, 'app/x', simple);
    const { client } = await runCfsd(t);
    const ok = await client.authImage({
      image,
      ...(auth === 'none' ? {} : { credentials: ALICE }),
      wait: true,
    });
    assert.equal(ok.status, containerfs.ImageStatus.IMAGE_STATUS_READY, auth);
    if (auth === 'htpasswd') {
      await assert.rejects(client.authImage({ image, credentials: { ...ALICE, password: 'nope' } }), {
        code: 16,
      });
      await assert.rejects(client.authImage({ image }), { code: 16 });
    }
  }
});

test('metrics, health (gRPC and HTTP) and prefetch reports', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const { image } = await pushBuilt(t, registry, 'app/m', {
    layers: [
      {
        compression: 'gzip',
        entries: [
          { type: 'file', path: 'bin/app', content: { size: 600_000, seed: 1 } },
          { type: 'file', path: 'etc/conf', content: 'x=1\n' },
        ],
      },
    ],
  });
  const { cfsd, client, storeDir } = await runCfsd(t, { blockSize: 64 * 1024 });
  const healthClient = new health.HealthClient(cfsd.address, credentials.createInsecure());
  t.after(() => healthClient.close());
  const check = promisify(healthClient.check.bind(healthClient)) as (
    r: health.HealthCheckRequest,
  ) => Promise<health.HealthCheckResponse>;
  assert.equal((await check({ service: '' })).status, health.HealthCheckResponse_ServingStatus.SERVING);
  assert.equal(
    (await check({ service: 'gcfs.containerfs.v1.ContainerFS' })).status,
    health.HealthCheckResponse_ServingStatus.SERVING,
  );
  await assert.rejects(check({ service: 'nope' }), { code: 5 });

  const auth = await client.authImage({ image, wait: true });
  const layer = auth.layers[0]!.digest;
  await assert.rejects(
    client.prefetchReport({ sessionToken: auth.sessionToken }),
    { code: 9 },
    'FAILED_PRECONDITION before any report',
  );
  await client.reportReads({
    sessionToken: auth.sessionToken,
    reads: [
      { layerDigest: layer, path: 'etc/conf', offset: 0, length: 4, atMs: 5 },
      { layerDigest: layer, path: 'bin/app', offset: 0, length: 600_000, atMs: 1 },
    ],
  });
  const report = await client.prefetchReport({ sessionToken: auth.sessionToken });
  assert.equal(report.reports, 1);
  // bin/app (read first) covers blocks 0..9 of the content stream; etc/conf follows it in block 9.
  assert.deepEqual(
    report.ranges.map((r) => [r.firstBlock, r.count]),
    [[0, 10]],
  );
  await client.readBlocks({ sessionToken: auth.sessionToken, layerDigest: layer, firstBlock: 0, count: 2 });

  const metrics = (await curl(['-sS', `http://${cfsd.metricsAddress}/metrics`])).body.toString();
  assert.match(metrics, /cfsd_requests_total\{method="AuthImage",code="OK"\} 1/);
  assert.match(
    metrics,
    /cfsd_requests_total\{method="GetPrefetchImageReport",code="FAILED_PRECONDITION"\} 1/,
  );
  assert.match(metrics, /cfsd_layer_index_duration_seconds_count 1/);
  assert.match(metrics, /cfsd_block_bytes_served_total [1-9]/);
  assert.match(metrics, /cfsd_block_cache_hit_ratio/);
  const { version, commit } = gcfsVersion();
  assert.ok(metrics.includes(`gcfs_build_info{version="${version}",commit="${commit}"} 1`), metrics);
  assert.equal((await curl(['-sS', `http://${cfsd.metricsAddress}/healthz`])).status, 200);

  // A restarted cfsd on the same store still has the report.
  healthClient.close();
  await cfsd.stop(100);
  const restarted = await runCfsd(t, { blockSize: 64 * 1024, storeDir });
  const again = await restarted.client.authImage({ image, wait: true });
  const kept = await restarted.client.prefetchReport({ sessionToken: again.sessionToken });
  assert.deepEqual(kept.ranges, report.ranges);
  assert.equal(kept.reports, 1);
});

test('serves on a Unix socket and over TLS', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const { image } = await pushBuilt(t, registry, 'app/s', simple);
  const dir = await tempDirFor(t, 'gcfs-cfsd-sock-');
  const { client } = await runCfsd(t, { listen: `unix:${join(dir.path, 'cfsd.sock')}` });
  assert.equal(
    (await client.authImage({ image, wait: true })).status,
    containerfs.ImageStatus.IMAGE_STATUS_READY,
  );

  const cert = join(dir.path, 'cert.pem');
  const key = join(dir.path, 'key.pem');
  const pair = await selfSignedCertificate({ commonName: 'localhost', altNames: ['IP:127.0.0.1'] });
  await writeFile(cert, pair.certificatePem);
  await writeFile(key, pair.keyPem);
  const { cfsd } = await runCfsd(t, { tls: { certFile: cert, keyFile: key } });
  const secure = new containerfs.ContainerFSClient(cfsd.address, credentials.createSsl(await readFile(cert)));
  t.after(() => secure.close());
  const authImage = promisify(secure.authImage.bind(secure)) as (
    r: containerfs.AuthImageRequest,
  ) => Promise<containerfs.AuthImageResponse>;
  const res = await authImage(containerfs.AuthImageRequest.fromPartial({ image, wait: true }));
  assert.equal(res.status, containerfs.ImageStatus.IMAGE_STATUS_READY);
  // A plaintext client cannot talk to the TLS port.
  const plain = connect(t, cfsd);
  await assert.rejects(plain.authImage({ image }), { code: 14 });
});

test('cfsd executable: --help, --version, bad flags exit 2 with one line', () => {
  const version = spawnSync(CFSD_BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0);
  assert.equal(version.stdout, `cfsd ${describeVersion()}\n`);
  const help = spawnSync(CFSD_BIN, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const flag of ['listen', 'store', 'block_size_kb', 'session_ttl', 'metrics_listen'])
    assert.match(help.stdout, new RegExp(`-${flag}`));
  for (const bad of [['--bogus'], ['--listen=nowhere'], ['-session_ttl=3x'], ['--block_size_kb=1']]) {
    const run = spawnSync(CFSD_BIN, bad, { encoding: 'utf8' });
    assert.equal(run.status, 2, bad.join(' '));
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /^cfsd: /);
  }
});

test('cfsd executable: says its version and commit when serving; a 0755 store dir is tightened to 0700 and logged; keys readable by others are warned about, not changed', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cfsd-modes-');
  const store = join(dir.path, 'store');
  await mkdir(store, { mode: 0o755 });
  await chmod(store, 0o755);
  const sessionKey = join(dir.path, 'session.key');
  await writeFile(sessionKey, 'k'.repeat(32), { mode: 0o644 });
  await chmod(sessionKey, 0o644);
  const child = await startProcess({
    name: 'cfsd',
    command: CFSD_BIN,
    args: [
      `--listen=127.0.0.1:${await freePort()}`,
      `--store=file://${store}`,
      `--session_key_file=${sessionKey}`,
      '--metrics_listen=',
    ],
    ready: { logLine: /cfsd serving/ },
  });
  t.after(() => child.stop());
  const log = child.output();
  const { version, commit } = gcfsVersion();
  assert.match(
    log,
    new RegExp(`msg="cfsd serving" .*commit=${commit} .*version=${version.replaceAll('.', '\\.')}`),
  );
  assert.match(log, new RegExp(`Tightened permissions of ${store} from 0755 to 0700`));
  assert.match(log, /--session_key_file \S+ is readable by other users \(mode 0644\): chmod 0600 it/);
  assert.equal((await stat(store)).mode & 0o7777, 0o700);
  assert.equal((await stat(join(store, 'lock'))).mode & 0o7777, 0o600);
  assert.equal((await stat(sessionKey)).mode & 0o7777, 0o644, "the operator's file is left alone");
});
