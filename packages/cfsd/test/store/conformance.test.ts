import { tempDirFor } from '@gcfs/testkit';
import { CachedStore, FileStore, type LayerStore, MemoryStore } from '../../src/store/index.js';
import { type StoreFactory, storeConformance } from './conformance.js';
import { replaceConformance } from './replace-conformance.js';

const fileStores: StoreFactory = async (t) => {
  const dir = await tempDirFor(t, 'gcfs-file-store-');
  return { open: () => FileStore.open(dir.path) };
};

const memoryStores: StoreFactory = async () => ({
  open: async () => new MemoryStore({ maxBytes: 256 << 20 }),
});

/** The same harness with a block cache in front; small enough that evictions happen too. */
function cached(inner: StoreFactory): StoreFactory {
  return async (t) => {
    const harness = await inner(t);
    const wrap = (store: LayerStore) => new CachedStore(store, { maxBytes: 6 << 20 });
    return { open: async () => wrap(await harness.open()) };
  };
}

storeConformance('file', fileStores, { persistent: true });
storeConformance('memory', memoryStores, { persistent: false });
storeConformance('cached(file)', cached(fileStores), { persistent: true });
storeConformance('cached(memory)', cached(memoryStores), { persistent: false });
replaceConformance('file', fileStores);
replaceConformance('memory', memoryStores);
replaceConformance('cached(file)', cached(fileStores));
replaceConformance('cached(memory)', cached(memoryStores));
