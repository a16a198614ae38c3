import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { CfsdClient } from '@gcfs/cfsd-client';
import { createLogger, digestOf, imageDirName, layerDirName, untarDirName } from '@gcfs/core';
import { DownloaderClient } from '@gcfs/downloader';
import { GcfsTree } from '@gcfs/fuse';
import { tempDirFor } from '@gcfs/testkit';
import { GarbageCollector } from '../../src/daemon/gc.js';
import { openImagesInUse } from '../../src/daemon/images-in-use.js';
import { cachedLayerDir } from '../../src/daemon/layer-dirs.js';
import { PullSecrets } from '../../src/daemon/pull-secrets.js';
import { Registrar } from '../../src/daemon/registrar.js';
import type { ImageTree } from '../../src/daemon/served-images.js';
import { SessionPool } from '../../src/daemon/sessions.js';

const A: string = digestOf('layer a');
const B: string = digestOf('layer b');
const C: string = digestOf('layer c');
const D: string = digestOf('layer d');
const layer = (digest: string) => ({
  digest,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  size: 1,
});

/** The registrar's view of a real (unmounted) gcfs tree; layers/ needs cfsd, which is away here. */
function treeOf(tree: GcfsTree): ImageTree {
  return {
    addLayer: async () => {
      throw new Error('no cfsd in this test');
    },
    useLocalLayer: (digest, dir) => tree.switchLayer(digest, dir),
    setImage: (name, layers) => tree.setImage(name, layers),
    removeImage: (name) => void tree.removeImage(name),
    removeLayer: (digest) => void tree.removeLayer(digest),
  };
}

describe('garbage collection', () => {
  it('removes only the layers and images no image in use needs', async (t) => {
    const dir = await tempDirFor(t);
    const cacheDir = join(dir.path, 'layers');
    for (const digest of [A, B, C, D]) {
      await mkdir(join(cachedLayerDir(cacheDir, digest), 'etc'), { recursive: true });
      await writeFile(join(cachedLayerDir(cacheDir, digest), 'etc', 'file'), digest);
    }
    // A download under way and a file that is not a layer: not GC's to touch.
    await mkdir(join(cacheDir, untarDirName(digestOf('being unpacked'))), { recursive: true });
    await writeFile(join(cacheDir, 'README'), 'not a layer');

    const db = await openImagesInUse(join(dir.path, 'images_in_use.db'));
    t.after(() => db.close());
    const one = '127.0.0.1:5000/one:v1';
    const two = '127.0.0.1:5000/two:v1';
    await db.put({
      name: one,
      manifestDigest: digestOf('m1'),
      layers: [layer(A), layer(B)],
      registeredAt: 1,
    });
    await db.put({
      name: two,
      manifestDigest: digestOf('m2'),
      layers: [layer(B), layer(D)],
      registeredAt: 2,
    });

    const log = new PassThrough();
    const lines: string[] = [];
    log.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
    const logger = createLogger({ destination: log, level: 'info' });
    // cfsd and the downloader are both away: restore must not wait for them.
    const cfsd = new CfsdClient({ address: '127.0.0.1:1', authImageMaxAttempts: 1 });
    const downloader = new DownloaderClient(join(dir.path, 'no-downloader.sock'));
    const tree = new GcfsTree();
    const registrar = new Registrar({
      cfsd: { authImage: (image, credentials, options) => cfsd.authImage(image, credentials, options) },
      tree: treeOf(tree),
      sessions: new SessionPool(),
      db,
      secrets: new PullSecrets(),
      downloader,
      cacheDir,
      prefetch: false,
      logger,
    });
    t.after(() => {
      registrar.close();
      cfsd.close();
      downloader.close();
    });
    assert.equal(await registrar.restore(), 2);
    assert.equal(tree.lookup(`/images/${imageDirName(one)}/1`)?.linkTarget, cachedLayerDir(cacheDir, B));
    assert.equal(tree.lookup(`/images/${imageDirName(two)}/1`)?.linkTarget, cachedLayerDir(cacheDir, D));

    const gc = new GarbageCollector({ subject: registrar, cacheDir, logger, periodMs: 0 });
    const first = await gc.run();
    assert.deepEqual(first.layers, [C]);
    assert.deepEqual(first.images, []);
    const names = (await readdir(cacheDir)).sort();
    assert.deepEqual(
      names,
      ['README', ...[A, B, D].map(layerDirName), untarDirName(digestOf('being unpacked'))].sort(),
    );
    assert.ok(
      lines.some((l) => l.includes(`msg="Found layersToRemove=map[${C}:true], imagesToRemove=map[]"`)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) =>
        /msg="fsRoot\.GC\(\) finished" duration=[0-9.]+(ns|µs|ms|s) module=filesystem_lib/.test(l),
      ),
    );

    assert.equal(await registrar.unregister(two), true);
    assert.equal(await registrar.unregister(two), false);
    assert.deepEqual(
      db.list().images.map((image) => image.name),
      [one],
    );
    // Unused but not yet collected: still in the tree.
    assert.ok(tree.lookup(`/images/${imageDirName(two)}`));
    const second = await gc.run();
    assert.deepEqual(second, { ...second, layers: [D], images: [two] });
    assert.equal(tree.lookup(`/images/${imageDirName(two)}`), undefined);
    assert.equal(tree.lookup(`/images/${imageDirName(one)}/0`)?.linkTarget, cachedLayerDir(cacheDir, A));
    assert.deepEqual(
      (await readdir(cacheDir)).filter((name) => name.startsWith('sha256=')).sort(),
      [A, B].map(layerDirName).sort(),
    );
    assert.deepEqual((await gc.run()).layers, [], 'a pass with nothing unused removes nothing');
  });

  it('logs its period like the Go daemon, and nothing runs when it is 0', async () => {
    const lines: string[] = [];
    const log = new PassThrough();
    log.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    const logger = createLogger({ destination: log });
    const subject = { collect: async () => ({ images: [], layers: [] }) };
    const periodic = new GarbageCollector({ subject, cacheDir: '/nonexistent', logger, periodMs: 180_000 });
    periodic.start();
    periodic.stop();
    const disabled = new GarbageCollector({ subject, cacheDir: '/nonexistent', logger, periodMs: 0 });
    disabled.start();
    disabled.stop();
    await new Promise((resolve) => setImmediate(resolve));
    assert.match(lines.join(''), /msg="Initializing GC with period=3m0s"/);
    assert.match(lines.join(''), /msg="GC disabled \(gc_period=0s\)"/);
  });
});
