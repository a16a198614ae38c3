// gcfsctl, the bin, against a running node: a registry, cfsd, gcfsd and (started later) the
// downloader. Two images are streamed through the admin socket; one of them has a layer whose
// blob is damaged in the registry after cfsd indexed it, so its download fails. gcfsctl is run
// as an operator runs it: as a child process, as root, as nobody, on a terminal (script(1)).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { layerDirName } from '@gcfs/core';
import { AdminClient, type ImageView, type LayerView, type NodeStatusView } from '@gcfs/gcfsd';
import type { ImageSpec } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import {
  asNobody,
  type BinRun,
  makeTempDir,
  repoBin,
  runBin,
  spawnBin,
  startGcfsStack,
  startRegistry,
} from '@gcfs/testkit';
import { busyboxEntries, pushTestImage } from './cri-images.js';

const BIN = repoBin('gcfsctl');

const APP: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    { entries: busyboxEntries() },
    {
      entries: [{ type: 'file', path: 'data', mode: 0o644, content: { size: 3 * 1024 * 1024, seed: 'ctl' } }],
    },
  ],
};
// Uncompressed, so that a damaged byte leaves a valid tar and only the digest can tell.
const BROKEN: ImageSpec = {
  config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] },
  layers: [
    {
      compression: 'none',
      entries: [{ type: 'file', path: 'broken', mode: 0o644, content: 'x'.repeat(4096) }],
    },
  ],
};

/** Push `spec`; its registered name (by digest, as the snapshotter registers) and its layers. */
async function pushed(host: string, repository: string, spec: ImageSpec) {
  const ref = await pushTestImage(host, repository, spec);
  const client = new RegistryClient({ insecureHosts: [host] });
  try {
    const resolved = await client.resolve(ref, { withConfig: false });
    return {
      ref,
      name: `${host}/${repository}@${resolved.manifestDigest}`,
      layers: resolved.manifest.layers.map((layer) => layer.digest as string),
    };
  } finally {
    await client.close();
  }
}

const short = (digest: string) => digest.slice(0, 'sha256:'.length + 12);
const json = <T>(r: BinRun): T => JSON.parse(r.stdout) as T;

test('gcfsctl: status, images, layers, wait, unregister and gc against a running node, in tables and JSON; errors name the fix', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const app = await pushed(registry.host, 'test/app', APP);
  const broken = await pushed(registry.host, 'test/broken', BROKEN);
  const stack = await startGcfsStack({
    insecureRegistry: '127.0.0.1',
    downloader: false,
    gcfsdFlags: ['--gc_period=0'],
  });
  t.after(() => stack.stop());
  const admin = new AdminClient(stack.adminSocket);
  t.after(() => admin.close());
  // The admin registration answers once cfsd indexed every layer: both images are streamed.
  await admin.register(app.name);
  await admin.register(broken.name);
  const ctl = (...args: string[]) => runBin(BIN, ['--mount_point', stack.mountPoint, ...args]);

  await t.test('status without the downloader: everything but the downloader is fine, exit 1', async () => {
    const human = await ctl('status');
    assert.equal(human.code, 1, human.stderr);
    assert.match(human.stdout, new RegExp(`^mount +${stack.mountPoint}: mounted$`, 'm'));
    assert.match(human.stdout, new RegExp(`^cfsd +${stack.cfsdAddress}: reachable$`, 'm'));
    assert.match(human.stdout, new RegExp(`^downloader +${stack.downloaderSocket}: UNREACHABLE \\(`, 'm'));
    assert.match(human.stdout, /^images +2 in use$/m);
    assert.match(human.stdout, /^health +NEEDS ATTENTION: the downloader is unreachable$/m);
    const status = await ctl('status', '--json');
    assert.equal(status.code, 1);
    const s = json<NodeStatusView & { healthy: boolean; problems: string[] }>(status);
    assert.equal(s.mounted, true);
    assert.equal(s.mountPoint, stack.mountPoint);
    assert.deepEqual([s.cfsd.address, s.cfsd.reachable], [stack.cfsdAddress, true]);
    assert.equal(s.downloader.reachable, false);
    assert.deepEqual([s.healthy, s.problems], [false, ['the downloader is unreachable']]);
    assert.equal(s.images, 2);
    assert.equal(s.layers.local, 0);
    assert.equal(s.layers.streamed + s.layers.downloading, app.layers.length + broken.layers.length);
    assert.equal(s.layerCache.dir, stack.cacheDir);
    assert.equal(s.contentCache.limitBytes, 1024 * 1024 * 1024, 'the default --max_content_cache_size_mb');
  });

  await t.test(
    'images and layers: streamed from cfsd, in the manifest order, as tables and JSON',
    async () => {
      const images = json<{ images: ImageView[] }>(await ctl('images', '--json')).images;
      assert.deepEqual(images.map((i) => i.name).sort(), [app.name, broken.name].sort());
      const appView = images.find((i) => i.name === app.name)!;
      assert.deepEqual(
        appView.layers.map((l) => l.digest),
        app.layers,
      );
      for (const layer of appView.layers) {
        assert.ok(['streamed', 'downloading'].includes(layer.state), layer.state);
        assert.equal(layer.index, 'loaded');
        assert.equal(layer.local, false);
        assert.ok(layer.size > 0);
      }
      const table = await ctl('images');
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^STATE +LOCAL +SIZE +REGISTERED +IMAGE$/m);
      assert.match(
        table.stdout,
        new RegExp(`^(streamed|downloading \\d+%) +0/2 .* ${app.name.replace(/[.]/g, '\\.')}$`, 'm'),
      );

      // The image by the reference it was pushed as (the tag is not registered, the repository is).
      const own = json<{ image: string; layers: LayerView[] }>(await ctl('layers', app.ref, '--json'));
      assert.equal(own.image, app.name);
      assert.deepEqual(
        own.layers.map((l) => l.digest),
        app.layers,
      );
      const all = json<{ layers: LayerView[] }>(await ctl('layers', '--json')).layers;
      assert.deepEqual(all.map((l) => l.digest).sort(), [...app.layers, ...broken.layers].sort());
      assert.deepEqual(all.find((l) => l.digest === broken.layers[0])?.images, [broken.name]);
      const layers = await ctl('layers', app.ref);
      assert.equal(layers.code, 0, layers.stderr);
      assert.match(layers.stdout, new RegExp(`^image ${app.name.replace(/[.]/g, '\\.')}$`, 'm'));
      for (const [i, digest] of app.layers.entries()) {
        assert.match(
          layers.stdout,
          new RegExp(`^${i} +${short(digest)} +(streamed|downloading) +loaded `, 'm'),
        );
      }
    },
  );

  await t.test(
    'wait: progress lines until every layer is local, exit 0; a damaged layer ends it with its reason',
    async () => {
      // Damaged after cfsd indexed it: its download cannot match its digest.
      const blob = registry.blobDataPath(broken.layers[0]!);
      const bytes = await readFile(blob);
      bytes[bytes.length >> 1]! ^= 0xff;
      await writeFile(blob, bytes);
      // The wait goes on across a restart of gcfsd (an upgrade), then ends once the layers land.
      const waiting = spawnBin(BIN, ['--mount_point', stack.mountPoint, 'wait', app.ref, '--timeout', '4m']);
      await waiting.until(`${app.name}: `);
      await stack.stopGcfsd();
      await waiting.until('gcfsd does not answer (restarting?): still waiting');
      await stack.startGcfsd();
      await stack.startDownloader();
      const waited = await waiting.done;
      assert.equal(waited.code, 0, waited.stderr);
      const lines = waited.stdout
        .trim()
        .split('\n')
        .filter((line) => !line.includes('gcfsd does not answer'));
      assert.match(
        lines[0]!,
        new RegExp(`^${app.name.replace(/[.]/g, '\\.')}: [0-2]/2 layers local, \\d+% of `),
      );
      assert.match(
        lines.at(-1)!,
        new RegExp(`^${app.name.replace(/[.]/g, '\\.')}: all 2 layers local after `),
      );
      const after = json<{ layers: LayerView[] }>(await ctl('layers', app.name, '--json')).layers;
      assert.deepEqual(
        after.map((l) => [l.digest, l.state, l.local]),
        app.layers.map((digest) => [digest, 'local', true]),
      );
      for (const digest of app.layers) assert.ok(existsSync(join(stack.cacheDir, layerDirName(digest))));

      const failed = await ctl('wait', broken.name, '--json');
      assert.equal(failed.code, 1);
      const error = (JSON.parse(failed.stderr) as { error: { code: string; message: string; hint: string } })
        .error;
      assert.equal(error.code, 'ERR_DIGEST_MISMATCH');
      assert.match(error.message, new RegExp(`^layer ${broken.layers[0]} of \\S+ failed to download: `));
      const human = await ctl('wait', broken.ref);
      assert.equal(human.code, 1);
      assert.match(
        human.stderr,
        /^gcfsctl: layer sha256:\w+ of \S+ failed to download: .+\n {2}fix: it stays streamed/,
      );
      const layer = json<{ layers: LayerView[] }>(await ctl('layers', broken.name, '--json')).layers[0]!;
      assert.equal(layer.state, 'failed');
      assert.equal(layer.downloadFailure?.code, 'ERR_DIGEST_MISMATCH');
      const table = await ctl('layers');
      assert.match(
        table.stdout,
        new RegExp(
          `^${short(broken.layers[0]!)} +failed +loaded +.* download failed: ERR_DIGEST_MISMATCH: `,
          'm',
        ),
      );
      assert.match((await ctl('images')).stdout, /^failed \(1 of 1 layers\) +0\/1 /m);
    },
  );

  await t.test('status with every process up: healthy, exit 0, the cache measured', async () => {
    const status = await ctl('status', '--json');
    assert.equal(status.code, 0, status.stdout);
    const s = json<NodeStatusView & { healthy: boolean }>(status);
    assert.equal(s.healthy, true);
    assert.equal(s.downloader.reachable, true);
    assert.deepEqual([s.layers.local, s.layers.failed], [2, 1]);
    assert.equal(s.layerCache.layers, 2);
    assert.ok(s.layerCache.bytes > 3 * 1024 * 1024, String(s.layerCache.bytes));
    assert.ok(s.layerCache.sizeBytes >= s.layerCache.freeBytes && s.layerCache.freeBytes > 0);
    const human = await ctl('status');
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^layers +3: 2 local, 1 failed$/m);
    assert.match(human.stdout, /^health +healthy$/m);
  });

  await t.test('wait on a terminal draws a progress bar', async () => {
    // script(1) gives gcfsctl a pseudo-terminal, as an operator's shell does.
    const command = [BIN, '--mount_point', stack.mountPoint, 'wait', app.name].join(' ');
    const onTty = await runBin('script', ['-qefc', command, '/dev/null']);
    assert.equal(onTty.code, 0, onTty.stdout);
    assert.match(onTty.stdout, /\r\x1b\[2K\[#{30}\] 100% {2}\S+ \S+\/\S+ \S+ {2}2\/2 layers local/);
  });

  await t.test('unregister by repository, then gc removes the image and its layers', async () => {
    const unregistered = await ctl('unregister', app.ref);
    assert.equal(unregistered.code, 0, unregistered.stderr);
    assert.equal(unregistered.stdout, `unregistered ${app.name}: the next gc removes it (gcfsctl gc)\n`);
    const images = json<{ images: ImageView[] }>(await ctl('images', '--json')).images;
    assert.deepEqual(
      images.map((i) => i.name),
      [broken.name],
    );
    const gc = json<{ images: string[]; layers: string[] }>(await ctl('gc', '--json'));
    assert.deepEqual(gc.images, [app.name]);
    assert.deepEqual(gc.layers.sort(), [...app.layers].sort());
    for (const digest of app.layers)
      assert.equal(existsSync(join(stack.cacheDir, layerDirName(digest))), false);
    const left = json<{ layers: LayerView[] }>(await ctl('layers', '--json')).layers;
    assert.deepEqual(
      left.map((l) => l.digest),
      broken.layers,
    );
    const again = await ctl('unregister', app.ref);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /is not in use on this node\n {2}fix: `gcfsctl images` lists the images in use\n$/,
    );
  });

  await t.test(
    'errors name the fix: unknown image, not root, gcfsd not running, a bad command line',
    async (t) => {
      const unknown = await ctl('wait', `${registry.host}/no/such:1`);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^gcfsctl: image "[^"]+\/no\/such:1" is not in use on this node\n/);

      const nobody = await asNobody(BIN, '--mount_point', stack.mountPoint, 'status');
      assert.equal(nobody.ok, false);
      assert.match(
        nobody.output,
        new RegExp(`permission denied on gcfsd's admin socket ${stack.adminSocket}`),
      );
      assert.match(nobody.output, /fix: run gcfsctl as root/);

      const dir = await makeTempDir('gcfsctl-');
      t.after(() => dir.cleanup());
      const absent = await runBin(BIN, ['--mount_point', join(dir.path, 'mnt'), 'images']);
      assert.equal(absent.code, 1);
      assert.match(
        absent.stderr,
        new RegExp(`^gcfsctl: gcfsd is not running: no admin socket at ${dir.path}/admin.sock\n`),
      );
      assert.match(absent.stderr, /fix: start gcfsd .*--mount_point/);
      // A socket left by a gcfsd that was killed: nothing listens on it any more.
      const stale = join(dir.path, 'stale.sock');
      const script = `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`;
      await runBin(process.execPath, ['-e', script]).catch(() => undefined); // killed: no exit code
      assert.ok(existsSync(stale));
      const refused = await runBin(BIN, ['--socket', stale, '--json', 'status']);
      assert.equal(refused.code, 1);
      const error = (JSON.parse(refused.stderr) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'ERR_GCFSD_UNAVAILABLE');
      assert.match(error.message, new RegExp(`^gcfsd is not running: nothing listens on ${stale}`));

      const usage = await ctl('wait');
      assert.equal(usage.code, 2);
      assert.match(
        usage.stderr,
        /^gcfsctl: Not enough non-option arguments|^gcfsctl: Missing required argument: image/,
      );
      const badTimeout = await ctl('wait', app.name, '--timeout', 'soon');
      assert.equal(badTimeout.code, 2);
      assert.match(badTimeout.stderr, /^gcfsctl: invalid --timeout "soon"/);
    },
  );
});
