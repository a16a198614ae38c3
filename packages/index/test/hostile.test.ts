import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Limits } from '@gcfs/core';
import { type IndexOptions, indexLayer } from '../src/index.js';
import { data, END, header, member, pax, tar } from './craft.js';
import { MemorySink } from './helpers.js';

const index = (bytes: Buffer, options?: IndexOptions) =>
  indexLayer(Readable.from([bytes]), new MemorySink(), options);

/** [case, tar bytes, expected code, message pattern naming the entry] */
const CORPUS: Array<[string, Buffer, string, RegExp]> = [
  ['../ escape', tar(member({ name: '../evil' }, 'x'), END), 'ERR_HOSTILE_TAR', /"\.\.\/evil".*"\.\."/],
  ['.. inside a path', tar(member({ name: 'a/../../b' }), END), 'ERR_HOSTILE_TAR', /"a\/\.\.\/\.\.\/b"/],
  [
    '.. in a PAX path',
    tar(pax([['path', 'ok/../../x']]), member({ name: 'innocent' }), END),
    'ERR_HOSTILE_TAR',
    /"ok\/\.\.\/\.\.\/x"/,
  ],
  [
    'hard link outside',
    tar(member({ name: 'h', typeflag: '1', linkname: '../../etc/shadow' }), END),
    'ERR_HOSTILE_TAR',
    /"h"/,
  ],
  [
    'hard link to a path not seen before',
    tar(member({ name: 'h', typeflag: '1', linkname: 'later' }), member({ name: 'later' }), END),
    'ERR_HOSTILE_TAR',
    /"h".*"later"/,
  ],
  [
    'hard link to a directory',
    tar(member({ name: 'd/', typeflag: '5' }), member({ name: 'h', typeflag: '1', linkname: 'd' }), END),
    'ERR_HOSTILE_TAR',
    /"h"/,
  ],
  [
    'write through a symlink',
    tar(
      member({ name: 'etc', typeflag: '2', linkname: '/etc' }),
      member({ name: 'etc/passwd' }, 'root::0:0'),
      END,
    ),
    'ERR_HOSTILE_TAR',
    /"etc".*symlink/,
  ],
  ['bad checksum', tar(member({ name: 'sum', badChecksum: true }), END), 'ERR_BAD_LAYER', /"sum".*checksum/],
  [
    'truncated content',
    tar(header({ name: 'cut', size: 5000 }), Buffer.alloc(1024, 1)),
    'ERR_BAD_LAYER',
    /"cut".*truncated/,
  ],
  [
    'truncated padding',
    tar(header({ name: 'pad', size: 10 }), Buffer.alloc(10, 1)),
    'ERR_BAD_LAYER',
    /"pad".*truncated/,
  ],
  [
    'truncated header',
    tar(member({ name: 'a' }, 'x'), Buffer.alloc(100, 1)),
    'ERR_BAD_LAYER',
    /truncated in a header/,
  ],
  [
    'absurd base-256 size',
    tar(
      header({ name: 'huge', patch: [[124, Buffer.from([0x80, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0])]] }),
      END,
    ),
    'ERR_BAD_LAYER',
    /"huge".*size.*absurdly large/,
  ],
  [
    'negative base-256 size',
    tar(header({ name: 'neg', patch: [[124, Buffer.alloc(12, 0xff)]] }), END),
    'ERR_BAD_LAYER',
    /"neg".*negative size/,
  ],
  [
    'octal field with garbage',
    tar(header({ name: 'garbage', patch: [[108, '12x4567\0']] }), END),
    'ERR_BAD_LAYER',
    /"garbage".*uid field "12x4567\\u0000" does not parse/,
  ],
  ['NUL in a PAX path', tar(pax([['path', 'a\0b']]), member({ name: 'n' }), END), 'ERR_HOSTILE_TAR', /NUL/],
  [
    'NUL inside a GNU long name',
    tar(
      member({ name: '././@LongLink', typeflag: 'L', format: 'gnu' }, 'visible\0hidden\0'),
      member({ name: 'x' }),
      END,
    ),
    'ERR_HOSTILE_TAR',
    /NUL/,
  ],
  [
    'PAX size larger than the archive',
    tar(pax([['size', '1000000']]), member({ name: 'liar' }, 'short'), END),
    'ERR_BAD_LAYER',
    /"liar".*truncated/,
  ],
  [
    'PAX size smaller than the content',
    tar(pax([['size', '3']]), member({ name: 'liar' }, 'x'.repeat(600))),
    'ERR_BAD_LAYER',
    /checksum|does not parse/,
  ],
  [
    'PAX size not a number',
    tar(pax([['size', '12abc']]), member({ name: 'nan' }), END),
    'ERR_BAD_LAYER',
    /"nan".*size/,
  ],
  [
    'malformed PAX record',
    tar(member({ name: 'p', typeflag: 'x' }, '99 path=x\n'), member({ name: 'm' }), END),
    'ERR_BAD_LAYER',
    /PAX record/,
  ],
  [
    'GNU sparse file',
    tar(member({ name: 'sparse', typeflag: 'S', format: 'gnu' }), END),
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"sparse".*sparse/,
  ],
  [
    'PAX sparse file',
    tar(
      pax([
        ['GNU.sparse.major', '1'],
        ['GNU.sparse.minor', '0'],
      ]),
      member({ name: 'sp' }),
      END,
    ),
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"sp".*sparse/,
  ],
  [
    'volume label',
    tar(member({ name: 'label', typeflag: 'V' }), END),
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /"label".*type "V"/,
  ],
  [
    'giant PAX header',
    tar(header({ name: 'PaxHeaders/giant', typeflag: 'x', size: 100 << 20 }), END),
    'ERR_HOSTILE_TAR',
    /"PaxHeaders\/giant".*exceed the limit/,
  ],
  [
    'many PAX headers in a row',
    tar(
      ...Array.from({ length: 20 }, (_, i) => pax([[`SCHILY.xattr.user.${i}`, 'v'.repeat(60_000)]])),
      member({ name: 'x' }),
      END,
    ),
    'ERR_HOSTILE_TAR',
    /exceed the limit/,
  ],
  [
    'directory with content',
    tar(member({ name: 'd/', typeflag: '5', size: 512 }), data('x'), END),
    'ERR_BAD_LAYER',
    /"d\/".*dir/,
  ],
  [
    'invalid whiteout',
    tar(member({ name: 'a/.wh..wh.plnk' }), END),
    'ERR_BAD_LAYER',
    /"a\/\.wh\.\.wh\.plnk"/,
  ],
  ['root that is a file', tar(member({ name: '.', typeflag: '0' }), END), 'ERR_HOSTILE_TAR', /root/],
  [
    'non-UTF-8 name',
    tar(member({ name: 'caf\xe9', patch: [[0, 'caf\xe9']] }), END),
    'ERR_UNSUPPORTED_TAR_ENTRY',
    /UTF-8/,
  ],
  [
    'extension header at the end',
    tar(pax([['path', 'x']])),
    'ERR_BAD_LAYER',
    /ends after an extension header/,
  ],
];

for (const [name, bytes, code, message] of CORPUS) {
  test(`hostile tar refused: ${name}`, async () => {
    await assert.rejects(index(bytes, { maxHeaderSize: 1 << 20 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      return true;
    });
  });
}

test('the entry limit is enforced', async () => {
  const members = Array.from({ length: 11 }, (_, i) => member({ name: `f${i}` }));
  await assert.rejects(index(tar(...members, END), { maxEntries: 10 }), {
    code: 'ERR_HOSTILE_TAR',
    message: /"f10".*more than 10/,
  });
  const ok = await index(tar(...members.slice(0, 10), END), { maxEntries: 10 });
  assert.equal(ok.entryCount, 10);
});

test('a corrupt gzip stream is a bad layer', async () => {
  const { gzipSync } = await import('node:zlib');
  const { decompressLayer } = await import('../src/index.js');
  const gz = gzipSync(tar(member({ name: 'a' }, 'x'.repeat(100_000)), END));
  gz[gz.length - 6]! ^= 0xff; // the CRC of the gzip trailer
  await assert.rejects(indexLayer(decompressLayer(Readable.from([gz]), 'gzip'), new MemorySink()), {
    code: 'ERR_BAD_LAYER',
  });
});

test('a refusal quotes a short prefix of a megabyte path, so the failure reason stays small', async () => {
  const path = `../${'a'.repeat(4 << 20)}`;
  await assert.rejects(
    index(tar(pax([['path', path]]), member({ name: 'x' }), END)),
    (err: Error & { details?: Record<string, unknown> }) => {
      assert.match(err.message, /^tar entry "\.\.\/a{509}"… \(4194307 characters\)/);
      assert.ok(err.message.length < Limits.errorText + 40, `${err.message.length} characters`);
      for (const value of Object.values(err.details ?? {})) {
        assert.ok(String(value).length < Limits.errorText + 40, 'details are bounded too');
      }
      return true;
    },
  );
});
