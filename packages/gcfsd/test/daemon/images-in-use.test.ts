import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { digestOf, onPermissionsTightened, type PermissionsTightened } from '@gcfs/core';
import { tempDirFor } from '@gcfs/testkit';
import { open } from 'lmdb';
import { type ImageRecord, openImagesInUse } from '../../src/daemon/images-in-use.js';

function record(name: string, layers = 2): ImageRecord {
  return {
    name,
    manifestDigest: digestOf(`manifest of ${name}`),
    layers: Array.from({ length: layers }, (_, i) => ({
      digest: digestOf(`${name} layer ${i}`),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      size: 1000 + i,
    })),
    registeredAt: 1_700_000_000_000,
  };
}

const byName = (a: ImageRecord, b: ImageRecord) => a.name.localeCompare(b.name);

describe('images-in-use DB', () => {
  it('creates its files 0600 without a tightening to report, and reports one made after', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'images_in_use.db');
    const tightened: PermissionsTightened[] = [];
    t.after(onPermissionsTightened((event) => tightened.push(event)));
    const previousUmask = process.umask(0o022);
    t.after(() => process.umask(previousUmask));
    const db = await openImagesInUse(path);
    await db.put(record('127.0.0.1:5000/app:v1'));
    await db.close();
    for (const file of [path, `${path}-lock`]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);
    assert.equal(tightened.length, 0, 'nothing to report on a fresh DB');

    await chmod(path, 0o644);
    const again = await openImagesInUse(path);
    assert.equal(again.list().images.length, 1);
    await again.close();
    assert.deepEqual(
      tightened.map((event) => [event.path, event.from]),
      [[path, 0o644]],
    );
  });

  it('keeps records across a close and a reopen, in one file at the given path', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'sub', 'images_in_use.db');
    const db = await openImagesInUse(path);
    const a = record('127.0.0.1:5000/app:v1');
    const b = record(`127.0.0.1:5000/other@sha256:${'a'.repeat(64)}`, 5);
    await db.put(a);
    await db.put(b);
    await db.put({ ...a, registeredAt: 42 });
    assert.equal(await db.remove('127.0.0.1:5000/never'), false);
    await db.close();
    assert.ok((await stat(path)).isFile(), 'the DB is a file at --images_in_use_db_path');

    const again = await openImagesInUse(path);
    t.after(() => again.close());
    assert.deepEqual(again.list(), { images: [{ ...a, registeredAt: 42 }, b].sort(byName), invalid: [] });
    assert.equal(await again.remove(a.name), true);
    assert.deepEqual(again.list().images, [b]);
  });

  it('reports records it cannot use instead of failing the start', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'images_in_use.db');
    const raw = open({ path, noSubdir: true });
    await raw.put('bad-shape', { v: 1, name: 'bad-shape', layers: 'nope' });
    await raw.put('other-version', { ...record('other-version'), v: 99 });
    await raw.put('renamed', { ...record('not-the-key'), v: 1 });
    await raw.close();
    const db = await openImagesInUse(path);
    t.after(() => db.close());
    await db.put(record('good'));
    const { images, invalid } = db.list();
    assert.deepEqual(images, [record('good')]);
    assert.deepEqual(invalid.sort(), ['bad-shape', 'other-version', 'renamed']);
  });

  it('keeps every acknowledged record whole when the writer is killed mid-stream', async (t) => {
    const dir = await tempDirFor(t);
    const path = join(dir.path, 'images_in_use.db');
    const module = new URL('../../src/daemon/images-in-use.js', import.meta.url).href;
    const script = join(dir.path, 'writer.mjs');
    // Writes records as fast as it can and prints each name once its put resolved.
    await writeFile(
      script,
      `import { openImagesInUse } from ${JSON.stringify(module)};
const db = await openImagesInUse(${JSON.stringify(path)});
for (let i = 0; ; i++) {
  const name = 'img-' + i;
  const layers = Array.from({ length: 1 + (i % 7) }, (_, j) => ({
    digest: 'sha256:' + String(i * 10 + j).padStart(64, '0'), mediaType: 'm', size: j }));
  await db.put({ name, manifestDigest: 'sha256:' + String(i).padStart(64, '0'), layers, registeredAt: i });
  process.stdout.write(name + '\\n');
}
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    const acknowledged: string[] = [];
    await new Promise<void>((resolve) => {
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        acknowledged.push(...lines);
        if (acknowledged.length >= 200) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    assert.ok(acknowledged.length >= 200, 'the writer died before acknowledging 200 records');

    const db = await openImagesInUse(path);
    t.after(() => db.close());
    const { images, invalid } = db.list();
    assert.deepEqual(invalid, []);
    const names = new Set(images.map((image) => image.name));
    for (const name of acknowledged) assert.ok(names.has(name), `acknowledged ${name} was lost`);
    for (const image of images) {
      const i = Number(image.name.slice('img-'.length));
      assert.equal(image.layers.length, 1 + (i % 7), `${image.name} is not whole`);
      assert.equal(image.registeredAt, i);
    }
  });

  it('keeps records in memory only without a path', async () => {
    const db = await openImagesInUse('');
    const a = record('docker.io/library/busybox:latest');
    await db.put(a);
    a.layers.pop();
    assert.equal(db.list().images[0]?.layers.length, 2, 'the store kept a reference to the caller object');
    assert.equal(await db.remove(a.name), true);
    assert.deepEqual(db.list(), { images: [], invalid: [] });
    await db.close();
  });
});
