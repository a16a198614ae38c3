import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { readXattrs } from '@gcfs/testkit';
import { type BuildResult, buildImage } from './image.js';
import { DEFAULT_MTIME } from './spec.js';

const execFileP = promisify(execFile);

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

async function run(cmd: string, args: string[], what: string, env?: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024, env: env ?? process.env });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new GcfsError(ErrorCode.FailedPrecondition, `${what}: ${cmd} is not installed`, {
        cause: err,
        hint: 'scripts/setup installs debootstrap, attr and the other tools the image builder runs',
      });
    }
    const tail = `${e.stderr ?? ''}\n${e.stdout ?? ''}`.trim().split('\n').slice(-8).join(' | ');
    throw new GcfsError(ErrorCode.Internal, `${what} failed: ${tail}`, { cause: err });
  }
}

/** Visit every object under `dir` (lstat, parents before children). */
async function walk(dir: string, visit: (path: string, st: import('node:fs').Stats) => Promise<void>) {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    await visit(path, st);
    if (st.isDirectory()) await walk(path, visit);
  }
}

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

/** Unmount everything mounted at or below `dir`, deepest first (an interrupted build may leave some). */
async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) =>
      line
        .split(' ')[4]
        ?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    )
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of points) await run('umount', ['-l', point], `unmounting ${point}`);
}

/** Remove a build tree without ever descending into a mount (a bind of /dev must not be emptied). */
async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir);
  await run('rm', ['-rf', '--one-file-system', '--', dir], `removing ${dir}`);
}

/**
 * `<cacheDir>/<key>/`, built by `build` in a temporary sibling and renamed into place with a
 * `done` marker holding `build`'s JSON result: an interrupted build leaves only a temporary dir
 * (removed once its process is gone) and a finished one is reused as it is.
 */
async function cached<T>(cacheDir: string, key: string, build: (dir: string) => Promise<T>): Promise<T> {
  const final = join(cacheDir, key);
  const done = async () => JSON.parse(await readFile(join(final, 'done'), 'utf8')) as T;
  try {
    return await done();
  } catch {}
  await mkdir(cacheDir, { recursive: true });
  for (const name of await readdir(cacheDir)) {
    const pid = Number(name.match(/^\.tmp-(.+)-(\d+)$/)?.[2]);
    if (!name.startsWith(`.tmp-${key}-`) || !pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      await removeTree(join(cacheDir, name));
    }
  }
  const tmp = join(cacheDir, `.tmp-${key}-${process.pid}`);
  await removeTree(tmp);
  await mkdir(tmp);
  let result: T;
  try {
    result = await build(tmp);
    await writeFile(join(tmp, 'done'), JSON.stringify(result));
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
  const theirs = await done().catch(() => undefined); // another process finished first
  if (theirs !== undefined) {
    await removeTree(tmp);
    return theirs;
  }
  await removeTree(final); // a directory without `done` is a leftover
  try {
    await rename(tmp, final);
  } catch (err) {
    await removeTree(tmp);
    return done().catch(() => Promise.reject(err)); // lost the rename to a concurrent build
  }
  return result;
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
