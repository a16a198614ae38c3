import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { loadEndpoints, parseHostsToml } from '../src/index.js';

test('mirrors in file order, then server, with capabilities, TLS and headers', () => {
  const endpoints = parseHostsToml(
    `
server = "https://registry-1.docker.io"

[host."https://mirror-b.example.com"]
  capabilities = ["pull", "resolve"]
  ca = "certs/mirror.pem"
  [host."https://mirror-b.example.com".header]
    x-custom = "one"
    x-list = ["a", "b"]

[host."http://mirror-a.local:5000/prefix"]
  capabilities = ["pull"]
  skip_verify = true

[host."https://override.example.com/api/v2/proxy"]
  override_path = true
`,
    'docker.io',
    '/etc/containerd/certs.d/docker.io/hosts.toml',
  );
  assert.deepEqual(
    endpoints.map((e) => [e.base.href, e.mirror, [...e.capabilities].sort()]),
    [
      ['https://mirror-b.example.com/v2', true, ['pull', 'resolve']],
      ['http://mirror-a.local:5000/prefix/v2', true, ['pull']],
      ['https://override.example.com/api/v2/proxy', true, ['pull', 'push', 'resolve']],
      ['https://registry-1.docker.io/v2', false, ['pull', 'push', 'resolve']],
    ],
  );
  assert.deepEqual(endpoints[0]?.tls, {
    skipVerify: false,
    ca: ['/etc/containerd/certs.d/docker.io/certs/mirror.pem'],
  });
  assert.deepEqual(endpoints[0]?.headers, { 'x-custom': ['one'], 'x-list': ['a', 'b'] });
  assert.deepEqual(endpoints[1]?.tls, { skipVerify: true, ca: [] });
  assert.equal(endpoints[3]?.tls, undefined);
});

test('without server the upstream is the default host; insecure hosts use http', () => {
  const hub = parseHostsToml('[host."https://m.example"]\n', 'docker.io', '/x/hosts.toml');
  assert.equal(hub.at(-1)?.base.href, 'https://registry-1.docker.io/v2');
  const local = parseHostsToml('', '127.0.0.1:5000', '/x/hosts.toml', { insecureHosts: ['127.0.0.1'] });
  assert.equal(local.at(-1)?.base.href, 'http://127.0.0.1:5000/v2');
});

test('bad hosts.toml files fail with ERR_CONFIG', () => {
  for (const bad of ['server = ', 'server = 5', '[host."https://m"]\ncapabilities = ["fly"]', 'host = 3']) {
    assert.throws(
      () => parseHostsToml(bad, 'r.example', '/x/hosts.toml'),
      (err) => isGcfsError(err, ErrorCode.Config),
      bad,
    );
  }
});

test('containerd directory lookup: host_port_, host, _default, else defaults', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-hosts-');
  const none = await loadEndpoints('r.example:5000', { hostsDir: dir.path });
  assert.deepEqual(
    none.map((e) => e.base.href),
    ['https://r.example:5000/v2'],
  );
  await mkdir(join(dir.path, '_default'));
  await writeFile(join(dir.path, '_default', 'hosts.toml'), '[host."https://default-mirror"]\n');
  assert.equal(
    (await loadEndpoints('r.example:5000', { hostsDir: dir.path }))[0]?.base.host,
    'default-mirror',
  );
  await mkdir(join(dir.path, 'r.example:5000'));
  await writeFile(join(dir.path, 'r.example:5000', 'hosts.toml'), 'server = "http://r.example:5000"\n');
  assert.deepEqual(
    (await loadEndpoints('r.example:5000', { hostsDir: dir.path })).map((e) => e.base.href),
    ['http://r.example:5000/v2'],
  );
  await mkdir(join(dir.path, 'r.example_5000_'));
  await writeFile(join(dir.path, 'r.example_5000_', 'hosts.toml'), '[host."https://first"]\n');
  assert.equal((await loadEndpoints('r.example:5000', { hostsDir: dir.path }))[0]?.base.host, 'first');
});
