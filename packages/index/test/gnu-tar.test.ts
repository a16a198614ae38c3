import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { LayerCompression } from '@gcfs/core';
import type { LongNameFormat } from '@gcfs/image-builder';
import {
  diffTrees,
  gnuTarCreate,
  gnuTarExtract,
  makeRealTree,
  snapshotTree,
  tempDirFor,
} from '@gcfs/testkit';
import { Toc } from '../src/index.js';
import { BLOCK_SIZE, ENTRIES } from './fixtures.js';
import {
  buildLayerBlob,
  indexFile,
  OPAQUE_PATHS,
  opaqueDirs,
  opaqueMarkersIn,
  readContent,
  sha256,
  treeOfIndex,
} from './helpers.js';

const _run = promisify(execFile);

const CASES: Array<[LayerCompression, LongNameFormat]> = [
  ['gzip', 'pax'],
  ['zstd', 'gnu'],
  ['none', 'pax'],
];

for (const [compression, longNames] of CASES) {
  test(`every entry of a built layer matches GNU tar's extraction (${compression}, ${longNames})`, async (t) => {
    const dir = await tempDirFor(t);
    const blob = await buildLayerBlob(dir.path, ENTRIES, compression, longNames);
    const { index, sink } = await indexFile(blob, compression, { blockSize: BLOCK_SIZE });
    const out = join(dir.path, 'out');
    await gnuTarExtract(blob, out, { compression });
    const extracted = await snapshotTree(out);

    assert.deepEqual(diffTrees(await treeOfIndex(index, sink), extracted, { ignorePaths: OPAQUE_PATHS }), []);
    assert.deepEqual(opaqueDirs(index.entries), opaqueMarkersIn(extracted));
    assert.deepEqual(opaqueDirs(index.entries), ['var/cache']);
    assert.equal(index.entryCount, ENTRIES.length);
    assert.equal(index.blockSize, BLOCK_SIZE);
    // Hard links share content: the stream holds each file once, whiteouts hold nothing.
    const files = index.entries.filter((e) => e.type === 'file');
    assert.equal(
      index.contentSize,
      files.reduce((sum, e) => sum + e.size, 0),
    );
    assert.equal(index.blocks.length, Math.ceil(index.contentSize / BLOCK_SIZE));
    assert.equal(sink.blocks.length, index.blocks.length);
    // Zeros compress, seeded content does not and is kept raw.
    assert.ok(sink.encodings.includes('zstd') && sink.encodings.includes('raw'));

    const toc = new Toc(index.entries);
    assert.deepEqual(
      toc.children('dev').map((e) => e.name),
      ['dev/big', 'dev/fifo', 'dev/loop9', 'dev/null'],
    );
    assert.equal(toc.get('etc/deleted')?.type, 'whiteout');
    assert.equal(toc.get('etc/.wh.deleted'), undefined);
    assert.equal(toc.resolveHardlink(toc.get('bin/big3')!).name, 'bin/big');
    assert.equal(toc.get('etc/binary')?.uname, 'u');
    assert.equal(toc.get('etc/bigid')?.mtimeSec, 9_000_000_000);
  });
}

test('a tar written by GNU tar from a real directory indexes right (posix and gnu formats)', async (t) => {
  const dir = await tempDirFor(t);
  const src = join(dir.path, 'src');
  await makeRealTree(src);

  for (const format of ['posix', 'gnu'] as const) {
    const tar = join(dir.path, `${format}.tar`);
    // GNU tar stores xattrs in PAX records only: the gnu format carries none.
    await gnuTarCreate(src, tar, format);
    const { index, sink } = await indexFile(tar, 'none', { blockSize: 64 * 1024 });
    const out = join(dir.path, `out-${format}`);
    await gnuTarExtract(tar, out);
    assert.deepEqual(diffTrees(await treeOfIndex(index, sink), await snapshotTree(out)), [], format);
    const toc = new Toc(index.entries);
    assert.equal(toc.get('')?.implicit, false, 'the ./ entry is the root');
    if (format === 'posix') {
      assert.equal(toc.get('soft')?.mtimeNsec, 123456789);
      assert.equal(
        toc.get('sub/data')?.xattrs.get('security.capability')?.toString('hex'),
        '01000002ffffffff00000000ffffffff00000000',
      );
    }
    const data = toc.get('hard')!;
    assert.equal(
      sha256(await readContent(index, sink, data.contentOffset, data.size)),
      sha256(Buffer.alloc(300_000, 7)),
    );
  }
});
