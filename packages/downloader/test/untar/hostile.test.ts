import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decompressLayer } from '@gcfs/index';
import { diffTrees, rawTar, snapshotTree, type TempDir, tempDirFor } from '@gcfs/testkit';
import { removeUntarDir, TreeWriter, type UntarOptions, untarLayer } from '../../src/untar/index.js';
import { run } from './helpers.js';

const { END, header, member, pax, tar } = rawTar;

/**
 * A sandbox: the untar dir `dest` next to things a hostile tar would like to reach. Symlinks
 * in the corpus point at `outside` (by absolute and relative paths), not at the host's /etc,
 * so that a write through them would show in the sandbox's snapshot.
 */
async function sandbox(t: { after(fn: () => unknown): void }): Promise<TempDir & { dest: string }> {
  const dir = await tempDirFor(t, 'gcfs-untar-hostile-');
  await mkdir(join(dir.path, 'outside/sub'), { recursive: true });
  await writeFile(join(dir.path, 'outside/canary'), 'canary');
  await writeFile(join(dir.path, 'canary'), 'canary');
  return { ...dir, dest: join(dir.path, 'dest') };
}

const OUTSIDE_DEST = /^dest(\/|$)/;
const ok = member({ name: 'ok' }, 'written before the hostile entry');

/** [case, tar bytes (given the sandbox's path), options, code, message naming the entry] */
type Case = [string, (sandbox: string) => Buffer, UntarOptions, string, RegExp];

const CORPUS: Case[] = [
  [
    '../ escape',
    () => tar(ok, member({ name: '../canary' }, 'x'), END),
    {},
    'ERR_HOSTILE_TAR',
    /"\.\.\/canary"/,
  ],
  [
    '.. inside a path',
    () => tar(ok, member({ name: 'a/../../canary' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"a\/\.\.\/\.\.\/canary"/,
  ],
  [
    '.. in a PAX path',
    () => tar(ok, pax([['path', 'x/../../canary']]), member({ name: 'innocent' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"x\/\.\.\/\.\.\/canary"/,
  ],
  [
    '.. in a GNU long name',
    () =>
      tar(
        ok,
        member(
          { name: '././@LongLink', typeflag: 'L', format: 'gnu' },
          `${'a/'.repeat(60)}${'../'.repeat(70)}canary\0`,
        ),
        member({ name: 'x', format: 'gnu' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"(a\/)+(\.\.\/)+canary"/,
  ],
  [
    'absolute symlink out, then a file written through it',
    (box) =>
      tar(
        ok,
        member({ name: 'etc', typeflag: '2', linkname: `${box}/outside` }),
        member({ name: 'etc/canary' }, 'pwned'),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"etc".*symlink/,
  ],
  [
    'relative symlink out, then a directory made through it',
    () =>
      tar(
        ok,
        member({ name: 'up', typeflag: '2', linkname: '../outside' }),
        member({ name: 'up/sub/new', typeflag: '5' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"up".*symlink/,
  ],
  [
    'symlink out, then a whiteout through it',
    () =>
      tar(
        ok,
        member({ name: 'l', typeflag: '2', linkname: '../outside' }),
        member({ name: 'l/.wh.canary' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"l".*symlink/,
  ],
  [
    'symlink out, then an opaque marker through it',
    () =>
      tar(
        ok,
        member({ name: 'l', typeflag: '2', linkname: '../outside/sub' }),
        member({ name: 'l/.wh..wh..opq' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"l".*symlink/,
  ],
  [
    'symlink out, then a hard link through it',
    () =>
      tar(
        ok,
        member({ name: 'l', typeflag: '2', linkname: '../outside' }),
        member({ name: 'h', typeflag: '1', linkname: 'l/canary' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"h".*"l\/canary"/,
  ],
  [
    'hard link outside',
    () => tar(ok, member({ name: 'h', typeflag: '1', linkname: '../canary' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"h"/,
  ],
  [
    'hard link to an absolute path',
    () => tar(ok, member({ name: 'h', typeflag: '1', linkname: '/etc/shadow' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"h".*"\/etc\/shadow"/,
  ],
  [
    'hard link to a later entry',
    () => tar(ok, member({ name: 'h', typeflag: '1', linkname: 'later' }), member({ name: 'later' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"h".*"later"/,
  ],
  [
    'hard link to a directory',
    () =>
      tar(
        ok,
        member({ name: 'd/', typeflag: '5' }),
        member({ name: 'h', typeflag: '1', linkname: 'd' }),
        END,
      ),
    {},
    'ERR_HOSTILE_TAR',
    /"h".*"d"/,
  ],
  [
    'char device when devices are off',
    () =>
      tar(
        ok,
        member({
          name: 'dev/mem',
          typeflag: '3',
          patch: [
            [329, '0000001\0'],
            [337, '0000001\0'],
          ],
        }),
        END,
      ),
    { allowDevices: false },
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"dev\/mem".*char devices are not allowed/,
  ],
  [
    'block device when devices are off',
    () => tar(ok, member({ name: 'sda', typeflag: '4', patch: [[329, '0000010\0']] }), END),
    { allowDevices: false },
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"sda".*block devices are not allowed/,
  ],
  [
    'absurd base-256 size',
    () =>
      tar(
        ok,
        header({ name: 'huge', patch: [[124, Buffer.from([0x80, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0])]] }),
        END,
      ),
    {},
    'ERR_BAD_LAYER',
    /"huge".*absurdly large/,
  ],
  [
    'size larger than the archive (truncated content)',
    () => tar(ok, header({ name: 'cut', size: 50_000 }), Buffer.alloc(4096, 1)),
    {},
    'ERR_BAD_LAYER',
    /"cut".*truncated/,
  ],
  ['truncated header', () => tar(ok, Buffer.alloc(100, 1)), {}, 'ERR_BAD_LAYER', /truncated in a header/],
  [
    'bad checksum',
    () => tar(ok, member({ name: 'sum', badChecksum: true }), END),
    {},
    'ERR_BAD_LAYER',
    /"sum".*checksum/,
  ],
  [
    'PAX size that lies',
    () => tar(ok, pax([['size', '1000000']]), member({ name: 'liar' }, 'short'), END),
    {},
    'ERR_BAD_LAYER',
    /"liar".*truncated/,
  ],
  [
    'giant PAX header',
    () => tar(ok, header({ name: 'PaxHeaders/giant', typeflag: 'x', size: 100 << 20 }), END),
    { maxHeaderSize: 1 << 20 },
    'ERR_HOSTILE_TAR',
    /"PaxHeaders\/giant".*exceed the limit/,
  ],
  [
    'entry under a file',
    () => tar(ok, member({ name: 'f' }, 'x'), member({ name: 'f/child' }, 'y'), END),
    {},
    'ERR_HOSTILE_TAR',
    /"f".*file/,
  ],
  [
    'directory replaced by a file while a hard link points into it',
    () =>
      tar(
        ok,
        member({ name: 'd/', typeflag: '5' }),
        member({ name: 'd/f' }, 'x'),
        member({ name: 'h', typeflag: '1', linkname: 'd/f' }),
        member({ name: 'd' }, 'now a file'),
        END,
      ),
    {},
    'ERR_BAD_LAYER',
    /"d\/f".*hard links/,
  ],
  [
    'hard-linked file replaced',
    () =>
      tar(
        ok,
        member({ name: 'a' }, 'x'),
        member({ name: 'b', typeflag: '1', linkname: 'a' }),
        member({ name: 'a' }, 'y'),
        END,
      ),
    {},
    'ERR_BAD_LAYER',
    /"a".*hard links/,
  ],
  [
    'NUL in a PAX path',
    () => tar(ok, pax([['path', 'a\0/../../canary']]), member({ name: 'n' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /NUL/,
  ],
  [
    'NUL in a symlink target',
    () => tar(ok, pax([['linkpath', 'ok\0../../canary']]), member({ name: 's', typeflag: '2' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /"s".*NUL/,
  ],
  [
    'non-UTF-8 name',
    () => tar(ok, member({ name: 'caf\xe9', patch: [[0, 'caf\xe9']] }), END),
    {},
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /UTF-8/,
  ],
  [
    'invalid whiteout',
    () => tar(ok, member({ name: 'a/.wh..wh.plnk' }), END),
    {},
    'ERR_BAD_LAYER',
    /"a\/\.wh\.\.wh\.plnk"/,
  ],
  [
    'root that is a file',
    () => tar(ok, member({ name: '.', typeflag: '0' }), END),
    {},
    'ERR_HOSTILE_TAR',
    /root/,
  ],
  [
    'sparse file',
    () => tar(ok, member({ name: 'sparse', typeflag: 'S', format: 'gnu' }), END),
    {},
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"sparse"/,
  ],
  [
    'too many entries',
    () => tar(ok, ...Array.from({ length: 5 }, (_, i) => member({ name: `f${i}` })), END),
    { maxEntries: 4 },
    'ERR_HOSTILE_TAR',
    /"f3".*more than 4/,
  ],
];

for (const [name, bytes, options, code, message] of CORPUS) {
  test(`hostile tar refused, nothing written outside: ${name}`, async (t) => {
    const box = await sandbox(t);
    const before = await snapshotTree(box.path);
    await assert.rejects(
      untarLayer(Readable.from([bytes(box.path)]), box.dest, options),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, code, err.message);
        assert.match(err.message, message);
        return true;
      },
    );
    assert.deepEqual(diffTrees(before, await snapshotTree(box.path), { ignorePaths: OUTSIDE_DEST }), []);
    assert.equal(await readFile(join(box.dest, 'ok'), 'utf8'), 'written before the hostile entry');
    await removeUntarDir(box.dest);
    await assert.rejects(lstat(box.dest), { code: 'ENOENT' });
  });
}

test('symlinks out of the layer are kept as links and replaced, never followed', async (t) => {
  const box = await sandbox(t);
  const before = await snapshotTree(box.path);
  const bytes = tar(
    member({ name: 'abs', typeflag: '2', linkname: `${box.path}/outside/canary` }),
    member({ name: 'abs' }, 'replaces the link'),
    member({ name: 'rel', typeflag: '2', linkname: '../outside/sub' }),
    member({ name: 'rel/', typeflag: '5', mode: 0o700 }),
    member({ name: 'keep', typeflag: '2', linkname: '../canary' }),
    member({ name: 'hard', typeflag: '1', linkname: 'keep' }),
    member({ name: '/absolute/name' }, 'stays inside'),
    END,
  );
  await untarLayer(Readable.from([bytes]), box.dest);
  assert.deepEqual(diffTrees(before, await snapshotTree(box.path), { ignorePaths: OUTSIDE_DEST }), []);
  assert.equal(await readFile(join(box.dest, 'abs'), 'utf8'), 'replaces the link');
  assert.ok((await lstat(join(box.dest, 'rel'))).isDirectory());
  assert.equal(await readlink(join(box.dest, 'keep')), '../canary');
  assert.equal(await readlink(join(box.dest, 'hard')), '../canary', 'a hard link to the symlink itself');
  assert.equal(await readFile(join(box.dest, 'absolute/name'), 'utf8'), 'stays inside');
});

test('the writer refuses a parent that is a symlink, even one the table of contents never saw', async (t) => {
  const box = await sandbox(t);
  const writer = new TreeWriter(box.dest);
  writer.prepareRoot();
  await symlink(join(box.path, 'outside'), join(box.dest, 'planted'));
  assert.throws(() => writer.ensureDir('planted/sub'), { code: 'ERR_HOSTILE_TAR', message: /"planted"/ });
  await assert.rejects(lstat(join(box.path, 'outside/sub/sub')), { code: 'ENOENT' });
});

test('the untar dir must be new or empty', async (t) => {
  const box = await sandbox(t);
  await assert.rejects(untarLayer(Readable.from([tar(ok, END)]), join(box.path, 'outside')), {
    code: 'ERR_INVALID_ARGUMENT',
  });
  await symlink(join(box.path, 'outside/sub'), box.dest);
  await assert.rejects(untarLayer(Readable.from([tar(ok, END)]), box.dest), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(lstat(join(box.path, 'outside/sub/ok')), { code: 'ENOENT' });
});

test('a corrupt gzip stream is a bad layer', async (t) => {
  const box = await sandbox(t);
  const gz = gzipSync(tar(member({ name: 'a' }, 'x'.repeat(100_000)), END));
  gz[gz.length - 6]! ^= 0xff; // the CRC of the gzip trailer
  await assert.rejects(untarLayer(decompressLayer(Readable.from([gz]), 'gzip'), box.dest), {
    code: 'ERR_BAD_LAYER',
    message: /layer stream failed/,
  });
});

test('an abort stops the untar with ERR_ABORTED', async (t) => {
  const box = await sandbox(t);
  const controller = new AbortController();
  async function* slow(): AsyncGenerator<Buffer> {
    yield tar(member({ name: 'a' }, 'x'));
    controller.abort(new Error('shutting down'));
    yield tar(member({ name: 'b' }, 'y'), END);
  }
  await assert.rejects(untarLayer(slow(), box.dest, { signal: controller.signal }), {
    code: 'ERR_ABORTED',
  });
  await assert.rejects(lstat(join(box.dest, 'b')), { code: 'ENOENT' });
});

test('a full file system fails with ERR_LAYER_WRITE naming the entry', async (t) => {
  const box = await sandbox(t);
  const small = join(box.path, 'small');
  await mkdir(small);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  try {
    const bytes = tar(ok, member({ name: 'too-big' }, Buffer.alloc(2 << 20, 1)), END);
    await assert.rejects(untarLayer(Readable.from([bytes]), join(small, 'dest')), {
      code: 'ERR_LAYER_WRITE',
      message: /"too-big".*ENOSPC/,
    });
  } finally {
    await run('umount', [small]);
  }
});
