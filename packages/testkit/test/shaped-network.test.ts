import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { curl, portAccepts, startRegistry, startShapedNetwork } from '../src/index.js';
import { pullBlob, pushBlob } from './blob-with-curl.js';

const execFileAsync = promisify(execFile);

interface Qdisc {
  kind: string;
  root?: boolean;
  options?: { rate?: number; burst?: number; limit?: number };
}

async function rootQdisc(dev: string, netns?: string): Promise<Qdisc | undefined> {
  const ns = netns === undefined ? [] : ['-n', netns];
  const { stdout } = await execFileAsync('tc', [...ns, '-j', 'qdisc', 'show', 'dev', dev]);
  return (JSON.parse(stdout) as Qdisc[]).find((q) => q.root);
}

async function netnsExists(name: string): Promise<boolean> {
  const { stdout } = await execFileAsync('ip', ['netns', 'list']);
  return stdout.split('\n').some((line) => line.split(' ')[0] === name);
}

async function linkExists(dev: string): Promise<boolean> {
  const { stdout } = await execFileAsync('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).some((link) => link.ifname === dev);
}

test('registry in a 100 Mbit/s namespace: blobs cross the shaped veth, stop removes veth and netns', async (t) => {
  const net = await startShapedNetwork({ rateMbit: 100 });
  t.after(() => net.stop());
  const registry = await startRegistry({ listenHost: net.nsAddress, wrap: net.wrap });
  t.after(() => registry.stop());
  assert.equal(registry.host.split(':')[0], net.nsAddress);
  assert.equal(net.rateMbit, 100);

  // Both directions shaped: tc reports the rate in bytes per second.
  for (const [dev, ns] of [
    [net.hostVeth, undefined],
    [net.nsVeth, net.name],
  ] as const) {
    const qdisc = await rootQdisc(dev, ns);
    assert.equal(qdisc?.kind, 'tbf', `${dev}: ${JSON.stringify(qdisc)}`);
    assert.equal(qdisc?.options?.rate, 100 * 125_000);
    assert.ok((qdisc?.options?.burst ?? 0) >= 32 * 1024);
  }

  // The registry listens in the namespace only: not on the host's loopback.
  const port = Number(registry.host.split(':')[1]);
  assert.equal(await portAccepts(port), false);

  const data = randomBytes(4 * 1024 * 1024);
  const { digest, finish } = await pushBlob(registry.url, 'test/shaped', data);
  assert.equal(finish?.status, 201, finish?.body.toString());
  const before = await net.bytesFromNamespace();
  const pulled = await pullBlob(registry.url, 'test/shaped', digest);
  assert.equal(pulled.status, 200);
  assert.deepEqual(pulled.body, data);
  const after = await net.bytesFromNamespace();
  assert.ok(
    after - before >= data.length,
    `host received ${after - before} bytes for a ${data.length}-byte blob`,
  );
  assert.match(await registry.logs(), new RegExp(`listening on ${net.nsAddress.replaceAll('.', '\\.')}`));

  await registry.stop();
  await net.stop();
  await net.stop();
  assert.equal(await netnsExists(net.name), false);
  assert.equal(await linkExists(net.hostVeth), false);
  await assert.rejects(curl([`${registry.url}/v2/`], { timeoutMs: 2000 }));
});

test('several networks coexist on distinct subnets; unshaped has no tbf', async (t) => {
  const nets = await Promise.all([startShapedNetwork(), startShapedNetwork({ rateMbit: 1000 })]);
  for (const net of nets) t.after(() => net.stop());
  const [plain, fast] = nets as [(typeof nets)[0], (typeof nets)[0]];
  assert.notEqual(plain.name, fast.name);
  assert.notEqual(plain.nsAddress, fast.nsAddress);
  assert.notEqual(plain.hostVeth, fast.hostVeth);
  assert.equal(plain.rateMbit, undefined);
  assert.notEqual((await rootQdisc(plain.hostVeth))?.kind, 'tbf');
  assert.notEqual((await rootQdisc(plain.nsVeth, plain.name))?.kind, 'tbf');
  assert.equal((await rootQdisc(fast.nsVeth, fast.name))?.options?.rate, 1000 * 125_000);

  // Each namespace reaches its own host side (and so back) through its veth.
  for (const net of nets) {
    const { stdout } = await execFileAsync(
      ...asExec(net.wrap('ip', ['-j', 'route', 'get', net.hostAddress])),
    );
    assert.match(stdout, new RegExp(`"dev":"${net.nsVeth}"`));
  }
  const registry = await startRegistry({ listenHost: plain.nsAddress, wrap: plain.wrap });
  t.after(() => registry.stop());
  assert.equal((await curl([`${registry.url}/v2/`])).status, 200);
});

function asExec(wrapped: { command: string; args: string[] }): [string, string[]] {
  return [wrapped.command, wrapped.args];
}
