// Child process of crash.test.ts: writes one layer slowly into a file store, saying how far it
// got on stdout, so that the parent can SIGKILL it at chosen points.
// Usage: node crash-writer.js DIR SEED BLOCKS BLOCK_SIZE [REPLACED_SEED]
// With REPLACED_SEED, the layer replaces that one (same digest, begun with replace).
import { digestOf, sleep } from '@gcfs/core';
import { FileStore } from '../../src/store/index.js';
import { seededLayer } from './fixtures.js';

const [dir, seed, blocks, blockSize, replaced] = process.argv.slice(2);
const layer = seededLayer(seed!, Number(blocks), Number(blockSize));
if (replaced !== undefined) layer.digest = digestOf(replaced);
const store = await FileStore.open(dir!);
const writer = await store.begin(layer.digest, { replace: replaced !== undefined });
console.log('begun');
for (const [i, block] of layer.blocks.entries()) {
  await writer.appendBlock(block);
  console.log(`appended ${i}`);
  await sleep(3);
}
console.log('committing');
await writer.commit(layer.index);
console.log('committed');
await store.close();
