// The tar reader reads layers from any registry and the TOC deserializer reads indexes
// from the store: random and adversarial inputs must take time linear in their size.

import { Readable } from 'node:stream';
import { test } from 'node:test';
import { assertLinearTime, type LinearTimeCase, seededRandom } from '@gcfs/testkit';
import { deserializeLayerIndex, indexLayer, type LayerIndex, serializeLayerIndex } from '../src/index.js';
import { END, member, pax, tar } from './craft.js';
import { MemorySink } from './helpers.js';

const ENTRIES = 32;
const RATIO = 64;

/** Tar layers of `count` members, each built from its number. */
const SHAPES: Record<string, (i: number) => Buffer> = {
  'many files in one directory': (i) => member({ name: `f${i}` }, 'x'),
  'deep paths, named in PAX records': (i) =>
    tar(pax([['path', `${'d/'.repeat(200)}f${i}`]]), member({ name: 'ignored' }, 'x')),
  'many PAX records per member': (i) =>
    tar(
      pax(Array.from({ length: 40 }, (_, k) => [`SCHILY.xattr.user.k${k}`, `v${i}`] as [string, string])),
      member({ name: `x${i}` }),
    ),
  'hard links to one file': (i) =>
    i === 0 ? member({ name: 't' }, 'target') : member({ name: `h${i}`, typeflag: '1', linkname: 't' }),
  'the same path over and over': () => member({ name: 'a/b/c' }, 'again'),
  'whiteouts and opaque markers': (i) => member({ name: i % 2 ? `d${i}/.wh..wh..opq` : `.wh.g${i}` }),
  'dots and slashes to normalise': (i) => member({ name: `./a//./b${i}/./`, typeflag: '5' }),
};

function layer(shape: (i: number) => Buffer, count: number): Buffer {
  return tar(...Array.from({ length: count }, (_, i) => shape(i)), END);
}

/** A layer of randomly chosen shapes: every member valid, their mix unpredictable. */
function randomLayer(seed: number, count: number): Buffer {
  const random = seededRandom(seed);
  const shapes = Object.values(SHAPES).filter((s) => s !== SHAPES['hard links to one file']);
  return layer((i) => shapes[Math.floor(random() * shapes.length)]!(i), count);
}

const index = (bytes: Buffer): Promise<LayerIndex> =>
  indexLayer(Readable.from([bytes]), new MemorySink(), { blockSize: 64 * 1024 });

function cases<T>(make: (layer: Buffer) => T): Array<LinearTimeCase<T>> {
  const all = Object.entries(SHAPES).map(([name, shape]) => ({
    name,
    small: make(layer(shape, ENTRIES)),
    large: make(layer(shape, ENTRIES * RATIO)),
    ratio: RATIO,
  }));
  all.push({
    name: 'random mix of members',
    small: make(randomLayer(7, ENTRIES)),
    large: make(randomLayer(7, ENTRIES * RATIO)),
    ratio: RATIO,
  });
  return all;
}

test('the tar reader takes linear time on adversarial and random layers', async () => {
  await assertLinearTime(
    index,
    cases((bytes) => bytes),
  );
});

test('the TOC deserializer takes linear time on the indexes of those layers', async () => {
  const serialized = await Promise.all(
    cases((bytes) => bytes).map(async (c) => ({
      ...c,
      small: serializeLayerIndex(await index(c.small)),
      large: serializeLayerIndex(await index(c.large)),
    })),
  );
  await assertLinearTime(deserializeLayerIndex, serialized);
});
