// A root file system made of chosen Debian packages only (`apt-get download` + `dpkg-deb -x`),
// without a package manager, shell scripts run or anything else a debootstrap brings: the
// base layer of an image that needs glibc, a few libraries and a few tools. apt runs with its
// own sources, lists and status under the cache dir, so the host's apt configuration neither
// matters nor changes; the downloaded .debs are verified by apt against the signed lists.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { cached, runTool } from './build-cache.js';

export interface DebianPackagesSpec {
  /** Default 'bookworm' (its -updates and -security suites are used too). */
  suite?: string;
  /** Binary package names; dependencies are not added: list every one the programs need. */
  packages: string[];
  /** Paths (relative to the root) removed after extraction, e.g. 'usr/share/locale'. */
  remove?: string[];
}

export interface DebianPackagesOptions {
  /** Lists, downloaded .debs and built trees are kept here between runs. */
  cacheDir: string;
  /** Default http://deb.debian.org/debian (and /debian-security on the same host). */
  mirror?: string;
  /** apt's lists are refreshed when older than this; default one day. */
  maxListAgeMs?: number;
  log?: (line: string) => void;
}

export interface DebianPackage {
  name: string;
  version: string;
  sha256: string;
}

export interface DebianRootfs {
  /** The tree, under the cache dir: never change it. */
  dir: string;
  packages: DebianPackage[];
}

/** Bump when the tree built from the same packages changes: old cache entries are then ignored. */
const CACHE_FORMAT = 1;
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const HINT = 'scripts/setup installs apt, dpkg and debian-archive-keyring';
/** Merged /usr, as Debian 12 has it: these top-level dirs are links into /usr. */
const MERGED_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** apt with everything under `dir`: sources, lists, archives, an empty dpkg status. */
async function privateApt(dir: string, suite: string, mirror: string) {
  const sources = join(dir, 'sources.list');
  const parts = join(dir, 'sources.list.d');
  const status = join(dir, 'status');
  await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'archives', 'partial'), { recursive: true });
  await mkdir(parts, { recursive: true });
  await writeFile(status, '');
  const line = (url: string, dist: string) => `deb [signed-by=${KEYRING}] ${url} ${dist} main\n`;
  await writeFile(
    sources,
    line(mirror, suite) +
      line(mirror, `${suite}-updates`) +
      line(mirror.replace(/\/debian\/?$/, '/debian-security'), `${suite}-security`),
  );
  const options = [
    `Dir::Etc::SourceList=${sources}`,
    `Dir::Etc::SourceParts=${parts}`,
    `Dir::Etc::Preferences=${join(dir, 'preferences')}`,
    `Dir::Etc::PreferencesParts=${parts}`,
    `Dir::State::Lists=${join(dir, 'lists')}`,
    `Dir::State::status=${status}`,
    `Dir::Cache=${dir}`,
    `Dir::Cache::Archives=${join(dir, 'archives')}`,
    'APT::Architecture=amd64',
    'APT::Architectures=amd64',
    // Our cache dir is root's: apt's _apt user could not write there.
    'APT::Sandbox::User=root',
  ].flatMap((o) => ['-o', o]);
  const env = { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  return (args: string[], what: string, cwd?: string) =>
    runTool('apt-get', [...options, ...args], what, { env, cwd, hint: HINT });
}

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** `apt-get download --print-uris` lines: `'URI' file size SHA256:hex`. */
function parseUris(text: string, names: string[]): DebianPackage[] {
  const found: DebianPackage[] = [];
  for (const line of text.split('\n')) {
    const [uri, file, size, checksum] = line.trim().split(' ');
    const [name, version, arch] = file?.endsWith('.deb') ? file.slice(0, -4).split('_') : [];
    const sha256 = checksum?.startsWith('SHA256:') ? checksum.slice('SHA256:'.length) : '';
    if (
      uri?.startsWith("'") &&
      name &&
      version &&
      arch &&
      /^\d+$/.test(size ?? '') &&
      /^[0-9a-f]{64}$/.test(sha256)
    ) {
      found.push({ name, version: decodeURIComponent(version), sha256 });
    }
  }
  const missing = names.filter((n) => !found.some((p) => p.name === n));
  if (missing.length > 0)
    throw new GcfsError(ErrorCode.NotFound, `Debian packages not found: ${missing.join(', ')}`);
  return found.sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The file apt-get download names a package's .deb (an epoch's colon is written %3a). */
function debFile(p: DebianPackage): string {
  return `${p.name}_${p.version.replace(':', '%3a')}_amd64.deb`;
}

/** Move `/bin`, `/lib`, ... into `/usr` and leave links in their place, as Debian 12's usrmerge. */
export async function mergeUsr(root: string): Promise<void> {
  for (const name of MERGED_DIRS) {
    const top = join(root, name);
    const st = await stat(top).catch(() => undefined);
    if (st === undefined) continue;
    if (st.isDirectory()) {
      const target = join(root, 'usr', name);
      await mkdir(target, { recursive: true });
      await moveInto(top, target);
      await rm(top, { recursive: true });
    } else {
      await rm(top);
    }
    await symlink(`usr/${name}`, top);
  }
}

/** Move every entry of `from` into `to`, merging directories that exist in both. */
async function moveInto(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    const existing = await stat(target).catch(() => undefined);
    if (existing === undefined) await rename(source, target);
    else if (entry.isDirectory() && existing.isDirectory()) await moveInto(source, target);
    else throw new GcfsError(ErrorCode.Internal, `merging /usr: ${source} and ${target} both exist`);
  }
}

/** Documentation except each package's copyright file, which goes with its binaries. */
async function removeDocs(root: string): Promise<void> {
  const docs = join(root, 'usr/share/doc');
  for (const pkg of await readdir(docs).catch(() => [] as string[])) {
    for (const name of await readdir(join(docs, pkg)).catch(() => [] as string[])) {
      if (name !== 'copyright') await rm(join(docs, pkg, name), { recursive: true, force: true });
    }
  }
}

/** What a container expects in /etc that package maintainer scripts would have written. */
async function minimalEtc(root: string): Promise<void> {
  const etc = join(root, 'etc');
  await mkdir(etc, { recursive: true });
  await writeFile(
    join(etc, 'passwd'),
    'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  );
  await writeFile(join(etc, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(etc, 'nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  // libfuse and mount keep no mtab of their own when it is the kernel's list.
  await rm(join(etc, 'mtab'), { force: true });
  await symlink('../proc/self/mounts', join(etc, 'mtab'));
  for (const dir of ['tmp', 'var/tmp']) {
    await mkdir(join(root, dir), { recursive: true, mode: 0o1777 });
    await runTool('chmod', ['1777', join(root, dir)], `chmod ${dir}`);
  }
}

/** The dpkg status database, so that scanners see which package versions the image holds. */
async function dpkgStatus(root: string, controls: string[]): Promise<void> {
  const entries = controls.map((control) =>
    control.trim().replace(/^(Package: .*)$/m, '$1\nStatus: install ok installed'),
  );
  await mkdir(join(root, 'var/lib/dpkg'), { recursive: true });
  await writeFile(join(root, 'var/lib/dpkg/status'), `${entries.join('\n\n')}\n`);
}

/**
 * Build (or reuse from the cache) a root file system of exactly `spec.packages`, at their
 * current versions in the suite: merged /usr, no documentation but copyright files, a dpkg
 * status file, a minimal /etc (passwd, group, nsswitch.conf, mtab). Needs apt, dpkg-deb and
 * the network for lists older than `maxListAgeMs` or packages not downloaded yet.
 */
export async function debianPackagesRootfs(
  spec: DebianPackagesSpec,
  options: DebianPackagesOptions,
): Promise<DebianRootfs> {
  const log = options.log ?? (() => {});
  const suite = spec.suite ?? 'bookworm';
  const mirror = options.mirror ?? 'http://deb.debian.org/debian';
  await access(KEYRING).catch((err: unknown) => {
    throw new GcfsError(ErrorCode.FailedPrecondition, `${KEYRING} is missing`, { cause: err, hint: HINT });
  });
  const aptDir = join(options.cacheDir, `apt-${suite}`);
  const apt = await privateApt(aptDir, suite, mirror);
  const stamp = join(aptDir, 'lists', 'updated');
  if ((await ageMs(stamp)) > (options.maxListAgeMs ?? 86_400_000)) {
    log(`apt-get update (${suite}, ${suite}-updates, ${suite}-security from ${mirror})`);
    await apt(['-q', 'update'], `apt-get update of ${suite} (is ${mirror} reachable?)`);
    await writeFile(stamp, '');
  }
  const packages = parseUris(
    await apt(['download', '--print-uris', ...spec.packages], 'resolving the Debian packages'),
    spec.packages,
  );
  const debs = join(aptDir, 'debs');
  await mkdir(debs, { recursive: true });
  const have = new Set(await readdir(debs));
  const fetch = packages.filter((p) => !have.has(debFile(p))).map((p) => `${p.name}=${p.version}`);
  if (fetch.length > 0) {
    log(`apt-get download ${fetch.join(' ')}`);
    await apt(['-q', 'download', ...fetch], 'downloading the Debian packages', debs);
  }
  const remove = [...(spec.remove ?? [])].sort();
  const key = createHash('sha256')
    .update(JSON.stringify({ format: CACHE_FORMAT, suite, packages, remove }))
    .digest('hex')
    .slice(0, 16);
  await cached(options.cacheDir, `debian-${key}`, async (dir) => {
    const root = join(dir, 'rootfs');
    await mkdir(root);
    const controls: string[] = [];
    for (const p of packages) {
      const file = join(debs, debFile(p));
      if ((await sha256File(file)) !== p.sha256) {
        await rm(file, { force: true });
        throw new GcfsError(
          ErrorCode.DigestMismatch,
          `${file} does not match its list's sha256: removed, run again`,
        );
      }
      await runTool('dpkg-deb', ['-x', file, root], `extracting ${p.name}`, { hint: HINT });
      controls.push(await runTool('dpkg-deb', ['-f', file], `reading ${p.name}'s control`, { hint: HINT }));
    }
    await mergeUsr(root);
    await removeDocs(root);
    for (const path of remove) await rm(join(root, path), { recursive: true, force: true });
    await minimalEtc(root);
    await dpkgStatus(root, controls);
    return { packages };
  });
  log(`Debian base: ${packages.map((p) => `${p.name}=${p.version}`).join(' ')}`);
  return { dir: join(options.cacheDir, `debian-${key}`, 'rootfs'), packages };
}
