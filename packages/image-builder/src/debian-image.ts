import { createHash } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rm,
  rmdir,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { readXattrs } from '@gcfs/testkit';
import { cached, runTool, unmountUnder, walk } from './build-cache.js';
import { type BuildResult, buildImage } from './image.js';
import { DEFAULT_MTIME } from './spec.js';

/** A realistic image: a debootstrap base, the packages a workload needs, its app files. */
export interface DebianWorkload {
  /** Cache key prefix and image tag, e.g. 'python-numpy'. */
  name: string;
  /** Default 'bookworm'. */
  suite?: string;
  /** Extra Debian packages, installed with --no-install-recommends into the second layer. */
  packages: string[];
  /** Files of the third layer by path, e.g. {'app/main.py': {content: '...'}}; mode default 0o644. */
  app: Record<string, { content: string; mode?: number }>;
  cmd: string[];
}

export interface DebianImageOptions {
  /** Built images and base rootfs trees are kept here between runs. */
  cacheDir: string;
  /** Default http://deb.debian.org/debian. */
  mirror?: string;
  log?: (line: string) => void;
}

/** Bump when the layout of the cache or of the built image changes: old entries are then ignored. */
const CACHE_FORMAT = 1;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const run = (cmd: string, args: string[], what: string, env?: NodeJS.ProcessEnv) =>
  runTool(cmd, args, what, {
    env,
    hint: 'scripts/setup installs debootstrap, attr and the other tools the image builder runs',
  });

/** Sockets cannot go into a layer (and mean nothing in an image): a debootstrap tree may hold some. */
async function removeSockets(dir: string): Promise<void> {
  await walk(dir, async (path, st) => {
    if (st.isSocket()) await unlink(path);
  });
}

export interface OverlayConversion {
  whiteouts: number;
  opaques: number;
}

/**
 * Turn an overlayfs upper directory, in place, into a directory that `fromDirectory` packs as
 * an OCI layer: whiteouts (char device 0:0) become empty `.wh.<name>` files, opaque directories
 * (trusted.overlay.opaque=y) get a `.wh..wh..opq` entry, every trusted.overlay.* xattr is dropped
 * (they describe this overlay mount, not the image) and sockets are removed.
 */
export async function overlayUpperToLayerDir(dir: string): Promise<OverlayConversion> {
  const result: OverlayConversion = { whiteouts: 0, opaques: 0 };
  const kept: string[] = [];
  await walk(dir, async (path, st) => {
    if (st.isCharacterDevice() && st.rdev === 0) {
      await unlink(path);
      await writeFile(join(dirname(path), `.wh.${basename(path)}`), '');
      result.whiteouts++;
    } else if (st.isSocket()) {
      await unlink(path);
    } else {
      kept.push(path);
    }
  });
  const xattrs = await readXattrs([dir, ...kept]);
  const strip = new Map<string, string[]>();
  for (const [path, attrs] of xattrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (!name.startsWith('trusted.overlay.')) continue;
      strip.set(name, [...(strip.get(name) ?? []), path]);
      if (name === 'trusted.overlay.opaque' && value.toString() === 'y' && path !== dir) {
        await writeFile(join(path, '.wh..wh..opq'), '');
        result.opaques++;
      }
    }
  }
  for (const [name, paths] of strip) {
    for (let i = 0; i < paths.length; i += 256) {
      await run('setfattr', ['-h', '-x', name, '--', ...paths.slice(i, i + 256)], 'removing overlay xattrs');
    }
  }
  return result;
}

/** apt's package lists and caches: rebuilt by `apt-get update`, only weight in an image. */
async function removeAptCaches(root: string): Promise<void> {
  const regularFiles = async (dir: string, remove: (name: string) => boolean) => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      // Whiteouts (char devices) stay: they record what the layer deleted.
      if (remove(name) && (await lstat(join(dir, name))).isFile()) await unlink(join(dir, name));
    }
  };
  await regularFiles(join(root, 'var/cache/apt'), (n) => n.endsWith('.bin'));
  await regularFiles(join(root, 'var/cache/apt/archives'), (n) => n.endsWith('.deb'));
  await regularFiles(join(root, 'var/lib/apt/lists'), (n) => n !== 'lock');
}

/** `debootstrap --variant=minbase` of one suite, shared by every workload: `<dir>/rootfs`. */
async function baseRootfs(options: DebianImageOptions, suite: string, mirror: string): Promise<string> {
  const log = options.log ?? (() => {});
  await cached(options.cacheDir, `base-${suite}`, async (dir) => {
    const rootfs = join(dir, 'rootfs');
    const started = Date.now();
    log(`debootstrap --variant=minbase ${suite} from ${mirror}`);
    try {
      await run('debootstrap', ['--variant=minbase', suite, rootfs, mirror], `debootstrap ${suite}`);
    } catch (err) {
      const detail = await readFile(join(rootfs, 'debootstrap/debootstrap.log'), 'utf8').catch(() => '');
      throw new GcfsError(ErrorCode.Internal, `debootstrap of ${suite} from ${mirror} failed`, {
        cause: err,
        hint: `is the mirror reachable? ${detail.trim().split('\n').slice(-3).join(' | ')}`,
      });
    }
    await removeSockets(rootfs);
    await removeAptCaches(rootfs);
    log(`debootstrap ${suite}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { suite, mirror };
  });
  return join(options.cacheDir, `base-${suite}`, 'rootfs');
}

/** apt-get install in a chroot over an overlay of the base; leaves the overlay's upper dir at `upper`. */
async function installPackages(base: string, dir: string, packages: string[], log: (line: string) => void) {
  const [upper, work, merged] = ['packages', 'work', 'merged'].map((n) => join(dir, n)) as [
    string,
    string,
    string,
  ];
  for (const d of [upper, work, merged]) await mkdir(d);
  if (packages.length === 0) return upper;
  // Self-contained upper dir: no redirects, metacopy or index pointing back into the lower dir.
  const opts = `lowerdir=${base},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off,index=off`;
  await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, merged], 'mounting the install overlay');
  const env = { PATH, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', HOME: '/root' };
  const chroot = (args: string[], what: string) => run('chroot', [merged, ...args], what, env);
  try {
    await run('mount', ['-t', 'proc', 'proc', join(merged, 'proc')], 'mounting /proc in the chroot');
    await run('mount', ['--bind', '/dev', join(merged, 'dev')], 'binding /dev in the chroot');
    // Maintainer scripts must not start services inside the build chroot.
    await writeFile(join(merged, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    log(`apt-get install ${packages.join(' ')}`);
    await chroot(['apt-get', 'update', '-q'], 'apt-get update (is the mirror reachable?)');
    await chroot(
      ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages],
      'apt-get install',
    );
    await unlink(join(merged, 'usr/sbin/policy-rc.d'));
  } finally {
    await unmountUnder(merged);
  }
  await rm(work, { recursive: true, force: true });
  await rmdir(merged);
  await removeAptCaches(upper);
  return upper;
}

/** A tree of the workload's app files, with fixed mtimes so the layer is reproducible. */
async function appTree(dir: string, app: DebianWorkload['app']): Promise<void> {
  await mkdir(dir);
  for (const [name, file] of Object.entries(app)) {
    const rel = normalize(name).replace(/^\/+/, '');
    if (rel.startsWith('..') || rel === '.') {
      throw new GcfsError(ErrorCode.InvalidArgument, `app file ${name} is outside the image root`);
    }
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), file.content);
    await chmod(join(dir, rel), file.mode ?? 0o644);
  }
  await walk(dir, (path) => utimes(path, DEFAULT_MTIME, DEFAULT_MTIME));
}

/**
 * Build (or reuse from `<cacheDir>/<name>-<hash>/`) a three-layer gzip image: the debootstrap
 * minbase rootfs, what apt-get adds for `packages`, the app files. Needs root, debootstrap, network.
 */
export async function buildDebianImage(
  workload: DebianWorkload,
  options: DebianImageOptions,
): Promise<BuildResult> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(workload.name)) {
    throw new GcfsError(
      ErrorCode.InvalidArgument,
      `workload name ${JSON.stringify(workload.name)}: use [a-z0-9._-]`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new GcfsError(
      ErrorCode.FailedPrecondition,
      'building a Debian image needs root (debootstrap, mount, chroot)',
    );
  }
  const log = options.log ?? (() => {});
  const suite = workload.suite ?? 'bookworm';
  const mirror = options.mirror ?? 'http://deb.debian.org/debian';
  const spec = {
    format: CACHE_FORMAT,
    suite,
    packages: workload.packages,
    app: Object.entries(workload.app).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    cmd: workload.cmd,
  };
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
  const key = `${workload.name}-${hash}`;
  const started = Date.now();
  const base = await baseRootfs(options, suite, mirror);
  const result = await cached(options.cacheDir, key, async (dir) => {
    const upper = await installPackages(base, dir, workload.packages, log);
    const converted = await overlayUpperToLayerDir(upper);
    log(`packages layer: ${converted.whiteouts} whiteouts, ${converted.opaques} opaque dirs`);
    await appTree(join(dir, 'app'), workload.app);
    log('packing layers');
    return buildImage(
      {
        config: { cmd: workload.cmd, env: [`PATH=${PATH}`] },
        layers: [base, upper, join(dir, 'app')].map((d) => ({
          compression: 'gzip' as const,
          fromDirectory: d,
        })),
      },
      { layoutDir: join(dir, 'layout'), tag: workload.name },
    );
  });
  log(`${key}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // Built in a temporary dir: the layout is where the cache entry was renamed to.
  return { ...result, layoutDir: join(options.cacheDir, key, 'layout') };
}
