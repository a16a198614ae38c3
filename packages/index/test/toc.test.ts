import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { classifyWhiteout, indexLayer, Toc } from '../src/index.js';
import { END, member, tar } from './craft.js';
import { MemorySink, readContent } from './helpers.js';

async function tocOf(...parts: Buffer[]) {
  const sink = new MemorySink();
  const index = await indexLayer(Readable.from([tar(...parts, END)]), sink, { blockSize: 4096 });
  return { toc: new Toc(index.entries), index, sink };
}

test('implicit parents, later entries win, directories keep their children', async () => {
  const { toc, index, sink } = await tocOf(
    member({ name: 'a/b/f' }, 'first'),
    member({ name: 'a/b/f' }, 'second'),
    member({ name: 'a/', typeflag: '5', mode: 0o700 }),
    member({ name: 'x/y' }),
    member({ name: 'x' }, 'x is a file now'),
  );
  assert.deepEqual(
    index.entries.map((e) => [e.name, e.type, e.implicit]),
    [
      ['', 'dir', true],
      ['a', 'dir', false],
      ['a/b', 'dir', true],
      ['a/b/f', 'file', false],
      ['x', 'file', false],
    ],
  );
  assert.equal(toc.get('a')!.mode, 0o700);
  assert.equal(toc.get('a/b')!.mode, 0o755);
  const f = toc.get('a/b/f')!;
  assert.equal((await readContent(index, sink, f.contentOffset, f.size)).toString(), 'second');
  assert.deepEqual(
    toc.children('a').map((e) => e.name),
    ['a/b'],
  );
  assert.deepEqual(
    toc.children('').map((e) => e.name),
    ['a', 'x'],
  );
  assert.deepEqual(toc.children('x'), []);
});

test('whiteouts and opaque markers follow the OCI rules', async () => {
  const { toc } = await tocOf(
    member({ name: 'gone/.wh.file' }),
    member({ name: 'opq/.wh..wh..opq' }),
    member({ name: '.wh.replaced' }),
    member({ name: 'replaced/new' }),
    member({ name: 'kept' }),
    member({ name: '.wh.kept' }),
  );
  assert.equal(toc.get('gone/file')!.type, 'whiteout');
  assert.equal(toc.get('gone')!.opaque, false);
  assert.equal(toc.get('opq')!.opaque, true);
  assert.equal(toc.get('opq/.wh..wh..opq'), undefined);
  // Whited out and recreated in the same layer: the lower directory is hidden.
  assert.deepEqual([toc.get('replaced')!.type, toc.get('replaced')!.opaque], ['dir', true]);
  assert.equal(toc.get('kept')!.type, 'file');
  assert.deepEqual(classifyWhiteout('a/.wh..wh..opq'), { kind: 'opaque', dir: 'a' });
  assert.deepEqual(classifyWhiteout('.wh.x'), { kind: 'whiteout', path: 'x' });
  assert.deepEqual(classifyWhiteout('a/b'), { kind: 'none' });
  for (const bad of ['a/.wh.', 'a/.wh..', 'a/.wh..wh.foo'])
    assert.throws(() => classifyWhiteout(bad), { code: 'ERR_BAD_LAYER' });
});

test('hard links take their target’s metadata and content; replacing a target is refused', async () => {
  const { toc } = await tocOf(
    member({ name: 'f', mode: 0o751, uid: 3 }, 'shared'),
    member({ name: 'l', typeflag: '1', linkname: 'f', mode: 0o600 }),
  );
  const link = toc.get('l')!;
  assert.deepEqual(
    [link.type, link.mode, link.uid, link.size, link.contentOffset],
    ['hardlink', 0o751, 3, 6, 0],
  );
  assert.equal(toc.resolveHardlink(link).name, 'f');
  await assert.rejects(
    tocOf(
      member({ name: 'f' }, 'a'),
      member({ name: 'l', typeflag: '1', linkname: 'f' }),
      member({ name: 'f' }, 'b'),
    ),
    { code: 'ERR_BAD_LAYER', message: /"f".*hard links point to/ },
  );
});
