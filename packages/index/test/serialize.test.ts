import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDirFor } from '@gcfs/testkit';
import { deserializeLayerIndex, type LayerIndex, serializeLayerIndex } from '../src/index.js';
import { BLOCK_SIZE, ENTRIES } from './fixtures.js';
import { buildLayerBlob, indexFile } from './helpers.js';

test('a layer index survives serialisation; any corruption is detected', async (t) => {
  const dir = await tempDirFor(t);
  const { index } = await indexFile(await buildLayerBlob(dir.path, ENTRIES, 'none'), 'none', {
    blockSize: BLOCK_SIZE,
  });
  const bytes = serializeLayerIndex(index);
  assert.deepEqual(deserializeLayerIndex(bytes), index);

  for (const at of [0, 9, 40, bytes.length - 1]) {
    const damaged = Buffer.from(bytes);
    damaged[at]! ^= 0x20;
    assert.throws(() => deserializeLayerIndex(damaged), { code: 'ERR_CORRUPT_INDEX' });
  }
  assert.throws(() => deserializeLayerIndex(bytes.subarray(0, bytes.length - 1)), {
    code: 'ERR_CORRUPT_INDEX',
  });

  // Well-formed but inconsistent indexes (a bug or a forged store) are refused too.
  const inconsistent: Array<[string, (i: LayerIndex) => void]> = [
    [
      'content outside the layer',
      (i) => {
        i.entries.find((e) => e.type === 'file')!.size = i.contentSize + 1;
      },
    ],
    ['duplicate entry', (i) => void i.entries.push(i.entries.at(-1)!)],
    [
      'escaping name',
      (i) => {
        i.entries.at(-1)!.name = '../x';
      },
    ],
    [
      'dangling hard link',
      (i) => {
        i.entries.find((e) => e.type === 'hardlink')!.linkName = 'nowhere';
      },
    ],
    [
      'block sizes',
      (i) => {
        i.blocks[0]!.uncompressedSize -= 1;
      },
    ],
    [
      'orphan',
      (i) =>
        void i.entries.splice(
          i.entries.findIndex((e) => e.name === 'dev'),
          1,
        ),
    ],
  ];
  for (const [what, damage] of inconsistent) {
    const copy = deserializeLayerIndex(bytes);
    damage(copy);
    assert.throws(
      () => deserializeLayerIndex(serializeLayerIndex(copy)),
      { code: 'ERR_CORRUPT_INDEX' },
      what,
    );
  }
});
