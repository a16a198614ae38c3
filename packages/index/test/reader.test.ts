import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readTar, type TarEntryHeader } from '../src/index.js';
import { END, header, member, pax, tar } from './craft.js';

async function headers(bytes: Buffer): Promise<TarEntryHeader[]> {
  const out: TarEntryHeader[] = [];
  for await (const { body: _body, ...entry } of readTar([bytes])) out.push(entry);
  return out;
}

test('a missing trailer after a complete entry is accepted; a lone zero block ends the archive', async () => {
  assert.deepEqual(
    (await headers(tar(member({ name: 'a' }, 'x')))).map((e) => e.name),
    ['a'],
  );
  const afterZero = tar(member({ name: 'a' }), Buffer.alloc(512), member({ name: 'hidden' }));
  assert.deepEqual(
    (await headers(afterZero)).map((e) => e.name),
    ['a'],
  );
  assert.deepEqual(await headers(Buffer.alloc(0)), []);
});

test('names are normalised: leading / and ./ stripped, trailing / marks old-style directories', async () => {
  const entries = await headers(
    tar(
      member({ name: './', typeflag: '5' }),
      member({ name: '/abs/x' }),
      member({ name: './a//b/', typeflag: '\0' }),
      END,
    ),
  );
  assert.deepEqual(
    entries.map((e) => [e.name, e.type]),
    [
      ['', 'dir'],
      ['abs/x', 'file'],
      ['a/b', 'dir'],
    ],
  );
});

test('PAX records: fractional and negative mtimes, ids, names, both xattr encodings, global headers', async () => {
  const binary = Buffer.from([0, 0xff, 0x80, 0x3d, 0x0a]);
  const entries = await headers(
    tar(
      pax(
        [
          ['uid', '77'],
          ['uname', 'global'],
        ],
        'g',
      ),
      pax([
        ['mtime', '1600000000.5'],
        ['gid', '9000000'],
        ['SCHILY.xattr.user.a%3Db%25', binary],
        ['LIBARCHIVE.xattr.user.b64%20x', Buffer.from('hello').toString('base64')],
      ]),
      member({ name: 'one' }),
      pax([
        ['mtime', '-1.25'],
        ['uname', ''],
      ]),
      member({ name: 'two', uid: 5 }),
      END,
    ),
  );
  const [one, two] = entries;
  assert.deepEqual(
    [one!.mtimeSec, one!.mtimeNsec, one!.uid, one!.gid, one!.uname],
    [1600000000, 500000000, 77, 9000000, 'global'],
  );
  assert.deepEqual(one!.xattrs.get('user.a=b%'), binary);
  assert.deepEqual(one!.xattrs.get('user.b64 x'), Buffer.from('hello'));
  assert.deepEqual([two!.mtimeSec, two!.mtimeNsec, two!.uid], [-2, 750000000, 77]);
  assert.equal(two!.uname, '', 'an empty record deletes the global one (POSIX)');
});

test('base-256 numbers and v7 headers', async () => {
  const big = Buffer.alloc(8);
  big[0] = 0x80;
  big.writeUIntBE(3_000_000_000, 2, 6);
  const negativeTime = Buffer.alloc(12, 0xff); // -1
  const entries = await headers(
    tar(
      member({
        name: 'big',
        patch: [
          [108, big],
          [136, negativeTime],
        ],
      }),
      member({ name: 'old', format: 'v7', patch: [[265, 'ignored']] }),
      END,
    ),
  );
  assert.deepEqual([entries[0]!.uid, entries[0]!.mtimeSec], [3_000_000_000, -1]);
  assert.equal(entries[1]!.uname, '');
});

test('content not read is skipped; content read too late is an error', async () => {
  const reader = readTar([tar(member({ name: 'a' }, 'x'.repeat(1000)), member({ name: 'b' }, 'yz'), END)]);
  const bodies: Array<AsyncIterable<Buffer>> = [];
  const contents: string[] = [];
  for await (const entry of reader) {
    bodies.push(entry.body);
    if (entry.name === 'b') for await (const chunk of entry.body) contents.push(chunk.toString());
  }
  assert.deepEqual(contents, ['yz']);
  assert.equal(reader.bytesRead, 512 + 1024 + 512 + 512 + 1024);
  await assert.rejects(async () => {
    for await (const _ of bodies[0]!) {
    }
  }, /read too late/);
});

test('the reader pulls from its source only as fast as it is consumed', async () => {
  let pulled = 0;
  const chunks = [
    tar(member({ name: 'a' }, 'x')),
    tar(member({ name: 'b' }, 'y')),
    tar(member({ name: 'c' })),
    END,
  ];
  async function* source() {
    for (const chunk of chunks) {
      pulled++;
      yield chunk;
    }
  }
  const iterator = readTar(source())[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value?.name, 'a');
  assert.equal(pulled, 1);
  await iterator.return(undefined);
  assert.equal(pulled, 1, 'stopping early does not read the rest');
});

test('a hard link to a hard link and a contiguous file are read', async () => {
  const entries = await headers(
    tar(
      member({ name: 'c', typeflag: '7' }, 'data'),
      member({ name: 'h1', typeflag: '1', linkname: './c' }),
      member({ name: 'h2', typeflag: '1', linkname: '/h1' }),
      header({
        name: 'dev',
        typeflag: '3',
        patch: [
          [329, '0000001\0'],
          [337, '0000003\0'],
        ],
      }),
      END,
    ),
  );
  assert.deepEqual(
    entries.map((e) => [e.name, e.type, e.linkName, e.devMajor, e.devMinor]),
    [
      ['c', 'file', '', 0, 0],
      ['h1', 'hardlink', 'c', 0, 0],
      ['h2', 'hardlink', 'h1', 0, 0],
      ['dev', 'char', '', 1, 3],
    ],
  );
});
