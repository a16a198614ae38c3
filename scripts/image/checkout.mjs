// The gcfs side of the container image: which commit it is built from, and that commit
// checked out clean, installed with `npm ci`, built, made into its runtime tree (as
// deploy/systemd/install.sh installs it) and cut into the directories of the image's
// runtime, dependencies and application layers.

import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { runTool } from '@gcfs/image-builder';

/** Where the application lives in the image; its layout is the repository's. */
export const APP_DIR = 'opt/gcfs';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'scripts/build-image',
  GIT_AUTHOR_EMAIL: 'build-image@gcfs.invalid',
  GIT_COMMITTER_NAME: 'scripts/build-image',
  GIT_COMMITTER_EMAIL: 'build-image@gcfs.invalid',
};

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
 * A commit object of the working tree. `git stash create` exits 1 without a word when another
 * git process holds the index lock, so it is tried again before giving up.
 */
async function stashCommit(repo) {
  for (let attempt = 1; ; attempt++) {
    try {
      // A commit object needs an identity: a CI clone may have none configured.
      const out = await runTool('git', ['-C', repo, 'stash', 'create'], 'snapshotting the working tree', {
        env: { ...process.env, ...IDENTITY },
      });
      return out.trim();
    } catch (err) {
      if (attempt === 5) {
        throw new GcfsError(ErrorCode.Internal, `git stash create failed in ${repo}`, {
          cause: err,
          hint: 'another git process may hold .git/index.lock; commit or stash your changes and retry',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/**
 * The commit to build: HEAD, or when tracked files were changed a commit object of the
 * working tree made by `git stash create` (which touches neither the tree nor the stash list).
 * Untracked files are never part of it.
 */
export async function snapshotCheckout(repo) {
  const head = await git(repo, ['rev-parse', 'HEAD'], 'reading HEAD');
  const changed = await git(repo, ['status', '--porcelain', '--untracked-files=no'], 'reading the status');
  const stash = changed === '' ? '' : await stashCommit(repo);
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
function step(command, args, cwd, what, env = process.env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 2, 2] });
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

/** Every executable the workspace packages declare: name → path relative to the tree. */
async function workspaceBins(tree) {
  const bins = {};
  for (const dir of await readdir(join(tree, 'packages'))) {
    const manifest = JSON.parse(await readFile(join(tree, 'packages', dir, 'package.json'), 'utf8'));
    for (const [name, path] of Object.entries(manifest.bin ?? {})) bins[name] = join('packages', dir, path);
  }
  return bins;
}

/**
 * Check out `commit` into `<dir>/src`, `npm ci`, build, and make its runtime tree with
 * scripts/runtime-tree (the /opt/gcfs that deploy/systemd/install.sh installs: production
 * dependencies, the Node runtime in node_modules/node), then split that tree into the layers'
 * directories: `<dir>/node` (the runtime, and /usr/local/bin/node), `<dir>/deps` (the rest of
 * node_modules), `<dir>/app` (packages, scripts, docs, deploy, and every workspace
 * executable linked into /usr/local/bin). Stacked, they are /opt/gcfs as runtime-tree made it.
 */
export async function buildCheckout(repo, commit, dir, log) {
  const src = join(dir, 'src');
  await mkdir(src);
  const archive = join(dir, 'src.tar');
  await runTool('git', ['-C', repo, 'archive', '--format=tar', `--output=${archive}`, commit], 'git archive');
  await runTool('tar', ['-x', '-f', archive, '-C', src], 'extracting the checkout');
  await rm(archive);
  log('npm ci (the checkout, development dependencies included)');
  await step('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], src, 'npm ci');
  log('npm run build');
  // No commit in the build's own build-info.json: the layers serve every commit of this tree;
  // the image's last layer (gcfs-image.mjs) stamps the commit.
  await step('npm', ['run', '--silent', 'build'], src, 'npm run build', { ...process.env, GCFS_COMMIT: '' });
  log('scripts/runtime-tree');
  const tree = join(dir, 'tree');
  await step(join(src, 'scripts/runtime-tree'), [tree], src, 'scripts/runtime-tree');
  await rm(src, { recursive: true });

  const layers = { node: join(dir, 'node'), deps: join(dir, 'deps'), app: join(dir, 'app') };
  const modules = join(tree, 'node_modules');
  const runtime = join(layers.node, APP_DIR, 'node_modules');
  await mkdir(join(runtime, '.bin'), { recursive: true });
  await rename(join(modules, 'node'), join(runtime, 'node'));
  await rename(join(modules, '.bin/node'), join(runtime, '.bin/node'));
  await mkdir(join(layers.node, 'usr/local/bin'), { recursive: true });
  await symlink(`/${APP_DIR}/node_modules/node/bin/node`, join(layers.node, 'usr/local/bin/node'));
  await mkdir(join(layers.deps, APP_DIR), { recursive: true });
  await rename(modules, join(layers.deps, APP_DIR, 'node_modules'));
  await mkdir(join(layers.app, 'opt'), { recursive: true });
  await rename(tree, join(layers.app, APP_DIR));

  const bins = await workspaceBins(join(layers.app, APP_DIR));
  await mkdir(join(layers.app, 'usr/local/bin'), { recursive: true });
  for (const [name, path] of Object.entries(bins)) {
    await symlink(`/${APP_DIR}/${path}`, join(layers.app, 'usr/local/bin', name));
  }
  const nodeVersion = (await runTool(join(runtime, 'node/bin/node'), ['--version'], 'node --version')).trim();
  return { layers, bins: Object.keys(bins).sort(), nodeVersion };
}
