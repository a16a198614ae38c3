import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '@gcfs/core';
import { ALGORITHMS, type FileLayout } from './file-layout.js';

// Replacing a layer directory (see file-layout.ts) in two renames, since rename(2) does not
// replace a non-empty directory:
//
//   1. layers/<alg>/<hex>          -> layers/<alg>/<hex>.replaced   (the old copy, aside)
//   2. tmp/<unique> (the new copy) -> layers/<alg>/<hex>
//   3. remove layers/<alg>/<hex>.replaced
//
// A crash after 1 leaves the old copy aside and the new one in tmp/ (emptied at open): open
// puts the old copy back. A crash after 2 leaves both: open removes the old one. Either way a
// layer directory is one whole copy, never a mix. `<hex>.replaced` is not a digest, so lists
// of layers never name it.
const ASIDE = '.replaced';

/**
 * Install the complete layer directory `temp` at `target` in place of the copy there. With no
 * copy there (the layer was deleted meanwhile) `temp` is dropped: a replace brings nothing back.
 */
export async function swapLayerDir(layout: FileLayout, temp: string, target: string): Promise<void> {
  const aside = `${target}${ASIDE}`;
  try {
    await rename(target, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await rm(temp, { recursive: true, force: true });
    return;
  }
  try {
    await rename(temp, target);
  } catch (err) {
    await rename(aside, target);
    throw err;
  }
  await syncDir(join(target, '..'));
  await layout.removeDir(aside);
}

/** At open, before anything reads layers: finish or undo the swaps a crash interrupted. */
export async function recoverSwaps(layout: FileLayout): Promise<void> {
  for (const algorithm of ALGORITHMS) {
    const dir = layout.layersDir(algorithm);
    const names = new Set(await readdir(dir));
    let changed = false;
    for (const name of names) {
      if (!name.endsWith(ASIDE)) continue;
      const target = name.slice(0, -ASIDE.length);
      if (names.has(target)) await rm(join(dir, name), { recursive: true, force: true });
      else await rename(join(dir, name), join(dir, target));
      changed = true;
    }
    if (changed) await syncDir(dir);
  }
}
