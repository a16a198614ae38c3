// The gcfs side of the container image: which commit it is built from, and that commit
// checked out clean, installed with `npm ci`, built, pruned to production dependencies and
// cut into the directories of the image's runtime, dependencies and application layers.

import { spawn } from 'node:child_process';
import {
  chmod,
  copyFile,
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
} from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { runTool } from '@gcfs/image-builder';

/** Where the application lives in the image; its layout is the repository's. */
export const APP_DIR = 'opt/gcfs';
/** The files of a package's dist/src that run: no declarations, maps or tests. */
const RUNTIME_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.json']);

const git = (repo, args, what) => runTool('git', ['-C', repo, ...args], what).then((out) => out.trim());

/** The URL an image says it came from, without credentials; the checkout's path when it has no remote. */
async function sourceUrl(repo) {
  const remote = await git(repo, ['config', '--get', 'remote.origin.url'], 'reading the remote').catch(
    () => '',
  );
  if (remote === '') return `file://${repo}`;
  try {
    const url = new URL(remote);
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return remote; // scp-like git@host:path carries no secret
  }
}

/**
 * The commit to build: HEAD, or when tracked files were changed a commit object of the
 * working tree made by `git stash create` (which touches neither the tree nor the stash list).
 * Untracked files are never part of it.
 */
export async function snapshotCheckout(repo) {
  const head = await git(repo, ['rev-parse', 'HEAD'], 'reading HEAD');
  const stash = await git(repo, ['stash', 'create'], 'snapshotting the working tree');
  const commit = stash === '' ? head : stash;
  const packageJson = JSON.parse(await git(repo, ['show', `${commit}:package.json`], 'reading package.json'));
  return {
    commit,
    revision: stash === '' ? head : `${head}-dirty`,
    tree: await git(repo, ['rev-parse', `${commit}^{tree}`], 'reading the tree'),
    created: await git(repo, ['show', '-s', '--format=%cI', commit], 'reading the commit date'),
    version: packageJson.version,
    source: await sourceUrl(repo),
  };
}

/** Run a build step with its output on our stderr (stdout stays for the script's result). */
function step(command, args, cwd, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 2, 2] });
    child.on('error', (err) =>
      reject(new GcfsError(ErrorCode.FailedPrecondition, `${what}: cannot run ${command}`, { cause: err })),
    );
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new GcfsError(ErrorCode.Internal, `${what} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

async function readJson(path) {
  return JSON.parse(await readFile(path, 'utf8'));
}

/** Workspace packages that have executables, and every workspace package they depend on. */
async function shippedPackages(src) {
  const all = new Map();
  for (const dir of await readdir(join(src, 'packages'))) {
    const manifest = await readJson(join(src, 'packages', dir, 'package.json')).catch(() => undefined);
    if (manifest !== undefined) all.set(manifest.name, { dir, manifest });
  }
  const wanted = new Map();
  const visit = (name) => {
    const pkg = all.get(name);
    if (pkg === undefined || wanted.has(name)) return;
    wanted.set(name, pkg);
    for (const dep of Object.keys(pkg.manifest.dependencies ?? {})) visit(dep);
  };
  for (const [name, pkg] of all) if (pkg.manifest.bin !== undefined) visit(name);
  return { all, wanted };
}

/** Copy what of `from` runs (RUNTIME_EXTENSIONS) to `to`, keeping the tree. */
async function copyRuntimeFiles(from, to) {
  await cp(from, to, {
    recursive: true,
    filter: async (path) => (await lstat(path)).isDirectory() || RUNTIME_EXTENSIONS.has(extname(path)),
  });
}

/**
 * Check out `commit` into `<dir>/src`, `npm ci`, build, prune to production dependencies, and
 * lay the result out as three layer trees: `<dir>/node` (the Node runtime at
 * /usr/local/bin/node), `<dir>/deps` (/opt/gcfs/node_modules), `<dir>/app` (the shipped
 * packages' package.json, bin/, dist/src and native addons, scripts/exec-node, and every
 * package's executables linked into /usr/local/bin). Returns those dirs and what was shipped.
 */
export async function buildCheckout(repo, commit, dir, log) {
  const src = join(dir, 'src');
  await mkdir(src);
  await runTool(
    'git',
    ['-C', repo, 'archive', '--format=tar', `--output=${join(dir, 'src.tar')}`, commit],
    'git archive',
  );
  await runTool('tar', ['-x', '-f', join(dir, 'src.tar'), '-C', src], 'extracting the checkout');
  await rm(join(dir, 'src.tar'));
  log('npm ci (the checkout, development dependencies included)');
  await step('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], src, 'npm ci');
  log('npm run build');
  await step('npm', ['run', '--silent', 'build'], src, 'npm run build');

  const layers = { node: join(dir, 'node'), deps: join(dir, 'deps'), app: join(dir, 'app') };
  // The runtime is a development dependency (scripts run on it): taken before the prune.
  const node = join(layers.node, 'usr/local/bin/node');
  await mkdir(dirname(node), { recursive: true });
  await copyFile(await realpath(join(src, 'node_modules/.bin/node')), node);
  await chmod(node, 0o755);
  const nodeVersion = (await runTool(node, ['--version'], 'node --version')).trim();

  log('npm prune --omit=dev');
  await step('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], src, 'npm prune');
  const { all, wanted } = await shippedPackages(src);
  const deps = join(layers.deps, APP_DIR, 'node_modules');
  await mkdir(dirname(deps), { recursive: true });
  await rename(join(src, 'node_modules'), deps);
  // Links to workspace packages that are not shipped (test helpers) would dangle. npm's hidden
  // lockfile names the root's development dependencies too: without it, the layer changes
  // only when the production dependencies do.
  for (const [name] of all) if (!wanted.has(name)) await rm(join(deps, name), { force: true });
  await rm(join(deps, '.package-lock.json'), { force: true });

  const app = join(layers.app, APP_DIR);
  await mkdir(join(app, 'scripts'), { recursive: true });
  await copyFile(join(src, 'package.json'), join(app, 'package.json'));
  await copyFile(join(src, 'scripts/exec-node'), join(app, 'scripts/exec-node'));
  const bins = [];
  for (const [, { dir: pkgDir, manifest }] of wanted) {
    const from = join(src, 'packages', pkgDir);
    const to = join(app, 'packages', pkgDir);
    await mkdir(to, { recursive: true });
    await copyFile(join(from, 'package.json'), join(to, 'package.json'));
    await copyRuntimeFiles(join(from, 'dist/src'), join(to, 'dist/src'));
    for (const extra of ['bin', 'build/Release']) {
      await cp(join(from, extra), join(to, extra), {
        recursive: true,
        filter: (path) => !path.includes('/build/Release/') || path.endsWith('.node'),
      }).catch((err) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    for (const [name, path] of Object.entries(manifest.bin ?? {})) {
      bins.push(name);
      await mkdir(join(layers.app, 'usr/local/bin'), { recursive: true });
      await symlink(`/${APP_DIR}/packages/${pkgDir}/${path}`, join(layers.app, 'usr/local/bin', name));
    }
  }
  // scripts/exec-node runs the project's own runtime from node_modules/.bin, as in a checkout.
  await mkdir(join(app, 'node_modules/.bin'), { recursive: true });
  await symlink('/usr/local/bin/node', join(app, 'node_modules/.bin/node'));
  await rm(src, { recursive: true });
  return { layers, bins: bins.sort(), packages: [...wanted.keys()].sort(), nodeVersion };
}
