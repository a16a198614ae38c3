// The parts of debianPackagesRootfs that need no mirror: the merged /usr of Debian 12.
// (The whole, with apt and the network, runs in scripts/build-image and test/image-node.)

import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDirFor } from '@gcfs/testkit';
import { mergeUsr } from '../src/index.js';

test('mergeUsr moves /bin, /sbin and /lib into /usr and leaves relative links in their place', async (t) => {
  const root = (await tempDirFor(t)).path;
  for (const dir of ['bin', 'sbin', 'lib/x86_64-linux-gnu', 'lib64', 'usr/bin', 'usr/lib/x86_64-linux-gnu']) {
    await mkdir(join(root, dir), { recursive: true });
  }
  await writeFile(join(root, 'bin/bash'), 'bash');
  await writeFile(join(root, 'sbin/mount.fuse3'), 'mount.fuse3');
  await writeFile(join(root, 'lib/x86_64-linux-gnu/libfuse.so.2'), 'libfuse');
  await writeFile(join(root, 'usr/lib/x86_64-linux-gnu/libstdc++.so.6'), 'libstdc++');
  await writeFile(join(root, 'usr/bin/env'), 'env');

  await mergeUsr(root);

  for (const name of ['bin', 'sbin', 'lib', 'lib64']) {
    assert.equal(await readlink(join(root, name)), `usr/${name}`);
  }
  assert.equal(await readFile(join(root, 'usr/bin/bash'), 'utf8'), 'bash');
  assert.equal(await readFile(join(root, 'usr/bin/env'), 'utf8'), 'env');
  assert.equal(await readFile(join(root, 'usr/sbin/mount.fuse3'), 'utf8'), 'mount.fuse3');
  // Directories present on both sides are merged, not replaced.
  assert.equal(await readFile(join(root, 'lib/x86_64-linux-gnu/libfuse.so.2'), 'utf8'), 'libfuse');
  assert.equal(await readFile(join(root, 'lib/x86_64-linux-gnu/libstdc++.so.6'), 'utf8'), 'libstdc++');
  assert.ok((await lstat(join(root, 'usr/lib64'))).isDirectory());
  await assert.rejects(lstat(join(root, 'lib32')), { code: 'ENOENT' });
});

test('mergeUsr refuses two packages shipping the same path in / and /usr', async (t) => {
  const root = (await tempDirFor(t)).path;
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await writeFile(join(root, 'bin/sh'), 'dash');
  await writeFile(join(root, 'usr/bin/sh'), 'bash');
  await assert.rejects(mergeUsr(root), /merging \/usr: .*bin\/sh and .*usr\/bin\/sh both exist/);
});
