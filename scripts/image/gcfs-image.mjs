// gcfs's container image, built with packages/image-builder (no docker daemon) into an OCI
// layout cached under /var/tmp. The layers are keyed by what goes into them (the commit's
// tree and the exact Debian package files); the config and manifest, which name the commit,
// are written over them on every run (a few ms). Four layers, from the one that changes least to the one that changes
// with every release, so that an upgrade pulls only what changed:
//   1. Debian 12 packages: glibc, libstdc++, libfuse2, fuse3, bash, coreutils, mount (~12 MB)
//   2. the Node 24 runtime, /opt/gcfs/node_modules/node (and /usr/local/bin/node)
//   3. the other production node_modules
//   4. the rest of scripts/runtime-tree's /opt/gcfs (packages, docs, deploy), every workspace
//      executable linked into /usr/local/bin
//   5. @gcfs/core's build-info.json with the commit (gcfsVersion(), `gcfsd --version`), a few
//      hundred bytes written on every run like the config, so that layers 1-4 serve every
//      commit of the same tree
// Stacked, /opt/gcfs is the tree deploy/systemd/install.sh installs (--from can take it).
// Every entry has the same owner (root) and mtime: the same input gives the same layer digest.

import { createHash } from 'node:crypto';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildLayer,
  cached,
  DEFAULT_MTIME,
  debianPackagesRootfs,
  directoryEntries,
  imageOfLayers,
  OciLayout,
  removeTree,
  runTool,
  unmountUnder,
} from '@gcfs/image-builder';
import { APP_DIR, buildCheckout, snapshotCheckout } from './checkout.mjs';

export const IMAGE_CACHE = '/var/tmp/gcfs-image-cache';
/** Bump when the layers built from the same inputs change: old cache entries are then ignored. */
const FORMAT = 1;
/** Layer sets kept in the cache; older ones are removed after a build. */
const KEEP_BUILDS = 3;
const LAYER_NAMES = ['debian', 'node', 'node_modules', 'gcfs', 'version'];
const BUILD_INFO = `${APP_DIR}/packages/core/dist/build-info.json`;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * What gcfsd, cfsd and their scripts run, and nothing else: node needs glibc, libstdc++ and
 * libgcc; fuse-native libfuse2; the bin scripts bash, env, readlink and dirname (coreutils);
 * gcfsd `mount`/`umount` (stale mounts, fusectl) and fuse-native `fusermount -uz` through
 * /bin/sh (dash). fuse3 brings fusermount. base-files gives /etc/os-release to scanners.
 */
export const DEBIAN_PACKAGES = {
  suite: 'bookworm',
  packages: [
    'base-files',
    'libc6',
    'libgcc-s1',
    'gcc-12-base',
    'libstdc++6',
    'libfuse2',
    'fuse3',
    'libfuse3-3',
    'bash',
    'libtinfo6',
    'dash',
    'coreutils',
    'libacl1',
    'libattr1',
    'libgmp10',
    'libselinux1',
    'libpcre2-8-0',
    'mount',
    'libmount1',
    'libblkid1',
    'libsmartcols1',
  ],
  // Translations, manuals and iconv's character sets: nothing here reads them.
  remove: [
    'usr/share/locale',
    'usr/share/man',
    'usr/share/info',
    'usr/share/lintian',
    'usr/share/bug',
    'usr/lib/x86_64-linux-gnu/gconv',
  ],
};

/** A reproducible layer of `dir`: every entry root's, with one mtime. */
async function layerOf(dir) {
  const entries = (await directoryEntries(dir)).map((e) => ({ ...e, uid: 0, gid: 0, mtime: DEFAULT_MTIME }));
  return { entries, compression: 'gzip' };
}

/** The layer that says which commit the image is: build-info.json as `npm run build` writes it. */
function versionLayer({ version, revision }) {
  const parts = BUILD_INFO.split('/');
  const dirs = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
  const common = { uid: 0, gid: 0, mtime: DEFAULT_MTIME };
  return {
    compression: 'gzip',
    entries: [
      ...dirs.map((path) => ({ ...common, type: 'dir', path, mode: 0o755 })),
      {
        ...common,
        type: 'file',
        path: BUILD_INFO,
        mode: 0o644,
        content: `${JSON.stringify({ version, commit: revision })}\n`,
      },
    ],
  };
}

/**
 * Run the image's executables from the layers stacked read-only, as a container would see
 * them: each bin's --help, the native addons loaded, the mount tools present.
 */
async function smokeTest(dirs, work, bins) {
  const merged = join(work, 'merged');
  await mkdir(merged);
  const lower = [...dirs].reverse().join(':');
  try {
    await runTool(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lower}`, merged],
      'stacking the layers',
    );
    await runTool('mount', ['-t', 'proc', 'proc', join(merged, 'proc')], 'mounting /proc');
    await runTool('mount', ['--rbind', '/dev', join(merged, 'dev')], 'binding /dev');
    const addons = [
      "require('fuse-native')",
      "require('lmdb')",
      `require('/${APP_DIR}/packages/native/build/Release/gcfs_native.node')`,
    ].join(';');
    const script = [
      'set -eu',
      `cd /${APP_DIR}`,
      ...bins.map((bin) => `${bin} --help >/dev/null`),
      `node -e "${addons}"`,
      'fusermount -V >/dev/null',
      'mount --version >/dev/null',
      'umount --version >/dev/null',
    ].join('\n');
    await runTool('chroot', [merged, '/bin/sh', '-c', script], 'running the image (smoke test)', {
      env: { PATH, HOME: '/root', LC_ALL: 'C' },
    });
  } finally {
    await unmountUnder(merged);
  }
}

async function byteSize(dir) {
  return Number((await runTool('du', ['-sb', dir], 'du')).split('\t')[0]);
}

async function pruneCache(keep) {
  const entries = [];
  for (const name of await readdir(IMAGE_CACHE)) {
    if (!name.startsWith('layers-')) continue;
    const done = await stat(join(IMAGE_CACHE, name, 'done')).catch(() => undefined);
    if (done !== undefined) entries.push({ name, time: done.mtimeMs });
  }
  entries.sort((a, b) => b.time - a.time);
  for (const { name } of entries.slice(keep)) await removeTree(join(IMAGE_CACHE, name));
}

/**
 * Build gcfs's image from the checkout at `repo` (its layers reused from the cache when the
 * inputs are the same); `image` is what pushImage takes, `description` what a person reads:
 * layout dir, manifest digest, labels, per-layer sizes, whether the layers came from the cache.
 */
export async function buildGcfsImage({ repo, log, refreshDebian = false }) {
  if (process.getuid?.() !== 0) {
    throw new Error('building the image needs root (overlay mount and chroot for its smoke test)');
  }
  const checkout = await snapshotCheckout(repo);
  log(`source ${checkout.revision} (tree ${checkout.tree.slice(0, 12)}), version ${checkout.version}`);
  const debian = await debianPackagesRootfs(DEBIAN_PACKAGES, {
    cacheDir: IMAGE_CACHE,
    log,
    ...(refreshDebian ? { maxListAgeMs: 0 } : {}),
  });
  const key = createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, tree: checkout.tree, debian: debian.packages }))
    .digest('hex')
    .slice(0, 16);
  let fromCache = true;
  const started = Date.now();
  const built = await cached(IMAGE_CACHE, `layers-${key}`, async (dir) => {
    fromCache = false;
    const work = join(dir, 'build');
    await mkdir(work);
    const fromCheckout = await buildCheckout(repo, checkout.commit, work, log);
    const dirs = [debian.dir, fromCheckout.layers.node, fromCheckout.layers.deps, fromCheckout.layers.app];
    log('smoke test: the executables and native addons run from the stacked layers');
    await smokeTest(dirs, work, fromCheckout.bins);
    log('packing the layers (gzip)');
    const layout = await OciLayout.open(join(dir, 'layout'));
    const layers = [];
    const files = [];
    for (const d of dirs) {
      layers.push(await buildLayer(layout, await layerOf(d), 'oci'));
      files.push(await byteSize(d));
    }
    await removeTree(work);
    const { bins, nodeVersion } = fromCheckout;
    return { layers, files, bins, nodeVersion };
  });
  if (!fromCache) await pruneCache(KEEP_BUILDS);
  const labels = {
    'org.opencontainers.image.title': 'gcfs',
    'org.opencontainers.image.description':
      'Open image streaming for containerd: gcfsd, gcfsd --downloader and cfsd',
    'org.opencontainers.image.version': checkout.version,
    'org.opencontainers.image.revision': checkout.revision,
    'org.opencontainers.image.source': checkout.source,
    'org.opencontainers.image.created': checkout.created,
    'org.opencontainers.image.licenses': 'Apache-2.0',
  };
  const layoutDir = join(IMAGE_CACHE, `layers-${key}`, 'layout');
  const stamp = await buildLayer(await OciLayout.open(layoutDir), versionLayer(checkout), 'oci');
  const layers = [...built.layers, stamp];
  const image = await imageOfLayers(
    {
      created: checkout.created,
      config: { env: [`PATH=${PATH}`], cmd: ['gcfsd'], workingDir: '/', labels },
      annotations: labels,
    },
    layers,
    { layoutDir, tag: checkout.version },
  );
  log(
    `${fromCache ? 'cached layers' : 'built'}: image ${image.manifestDigest} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  const description = {
    version: checkout.version,
    revision: checkout.revision,
    labels,
    manifestDigest: image.manifestDigest,
    layoutDir,
    fromCache,
    bins: built.bins,
    nodeVersion: built.nodeVersion,
    debianPackages: debian.packages.map((p) => `${p.name}=${p.version}`),
    layers: layers.map((layer, i) => ({
      name: LAYER_NAMES[i],
      digest: layer.descriptor.digest,
      compressed: layer.descriptor.size,
      uncompressed: layer.uncompressedSize,
      files: built.files[i] ?? layer.uncompressedSize,
    })),
  };
  return { image, description };
}
