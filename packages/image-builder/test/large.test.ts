import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { gnuTarExtract, snapshotTree, tempDirFor } from '@gcfs/testkit';
import { buildImage, seededSha256 } from '../src/index.js';

const MiB = 1024 * 1024;

// In a file of its own: node runs each test file in its own process, so maxRSS is ours.
test('a 300 MiB file is built streaming, without holding it in memory', async (t) => {
  const dir = await tempDirFor(t);
  const content = { size: 300 * MiB + 12345, seed: 'large' };
  const built = await buildImage(
    {
      layers: [
        {
          compression: 'zstd',
          entries: [
            { type: 'dir', path: 'data' },
            { type: 'file', path: 'data/big', content },
          ],
        },
      ],
    },
    { layoutDir: join(dir.path, 'layout') },
  );
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  // A sanity bound, far below the content size: the layer was never held whole.
  assert.ok(peakMiB < 200, `peak RSS ${peakMiB.toFixed(0)} MiB while building a 300 MiB layer`);

  const layer = built.layers[0]!;
  assert.ok(layer.uncompressedSize > content.size);
  // Seeded content is incompressible, so the blob is about as big as the file.
  assert.ok(layer.descriptor.size > content.size);
  const out = join(dir.path, 'out');
  await gnuTarExtract(join(built.layoutDir, 'blobs/sha256', layer.descriptor.digest.slice(7)), out, {
    compression: 'zstd',
  });
  const node = (await snapshotTree(out)).get('data/big');
  assert.equal(node?.size, content.size);
  assert.equal(node?.sha256, await seededSha256(content));
});
