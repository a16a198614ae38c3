import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import type { LayerCompression } from '@gcfs/core';
import { diffTrees, gnuTarExtract, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { buildImage, type Entry, type LongNameFormat } from '../src/index.js';
import { ENTRIES, expectedTree, LONG_DIR, sha256 } from './fixtures.js';

const run = promisify(execFile);

const CASES: Array<[LayerCompression, LongNameFormat]> = [
  ['gzip', 'pax'],
  ['none', 'gnu'],
  ['zstd', 'pax'],
  ['gzip', 'gnu'],
];

for (const [compression, longNames] of CASES) {
  test(`every entry kind round-trips through GNU tar (${compression}, ${longNames} long names)`, async (t) => {
    const dir = await tempDirFor(t);
    const built = await buildImage(
      { layers: [{ compression, longNames, entries: ENTRIES }] },
      { layoutDir: join(dir.path, 'layout') },
    );
    const layer = built.layers[0]!;
    const blob = join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice('sha256:'.length));
    const bytes = await readFile(blob);
    assert.equal(`sha256:${sha256(bytes)}`, layer.descriptor.digest);
    assert.equal(bytes.length, layer.descriptor.size);
    const tar = { gzip: gunzipSync, zstd: zstdDecompressSync, none: (b: Buffer) => b }[compression](bytes);
    assert.equal(`sha256:${sha256(tar)}`, layer.diffId);
    assert.equal(tar.length, layer.uncompressedSize);
    // The long names really travel the way that was asked for.
    assert.equal(tar.includes('././@LongLink'), longNames === 'gnu');
    assert.equal(tar.includes(` path=${LONG_DIR}/`), longNames === 'pax');

    const out = join(dir.path, 'out');
    await gnuTarExtract(blob, out, { compression });
    const differences = diffTrees(await expectedTree(ENTRIES), await snapshotTree(out));
    assert.deepEqual(differences, []);
    // Owner names are in the headers too (the extraction above went by numbers).
    const { stdout } = await run('tar', ['-tvf', blob]);
    assert.match(stdout, /someone\/group .* etc\/binary\n/);
  });
}

test('layers are reproducible: the same spec gives the same digests', async (t) => {
  const dir = await tempDirFor(t);
  const spec = {
    layers: [{ entries: ENTRIES }, { compression: 'zstd' as const, entries: ENTRIES.slice(0, 3) }],
  };
  const a = await buildImage(spec, { layoutDir: join(dir.path, 'a') });
  const b = await buildImage(spec, { layoutDir: join(dir.path, 'b') });
  assert.equal(a.manifestDigest, b.manifestDigest);
  assert.deepEqual(a.layers, b.layers);
});

test('invalid entries are refused with a clear error', async (t) => {
  const dir = await tempDirFor(t);
  const layoutDir = join(dir.path, 'layout');
  const build = (entries: Entry[]) => buildImage({ layers: [{ entries }] }, { layoutDir });
  await assert.rejects(build([{ type: 'hardlink', path: 'a', target: 'b' }]), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /hardlink target b was not written before/,
  });
  await assert.rejects(build([{ type: 'file', path: '../escape' }]), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(build([{ type: 'char', path: 'c', major: 1 << 30, minor: 0 }]), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});
