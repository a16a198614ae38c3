// What the image builds that need root share: external tools run with a clear error,
// trees removed without crossing into mounts, and a cache of finished builds under a
// directory that survives runs (/var/tmp), safe against interrupted and concurrent builds.

import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';

const execFileP = promisify(execFile);

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Says how to get the tool when it is missing; default: scripts/setup installs it. */
  hint?: string;
}

/** Run `cmd`; its stdout. Failures name `what` and end with the tool's last output lines. */
export async function runTool(
  cmd: string,
  args: string[],
  what: string,
  options: RunToolOptions = {},
): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, {
      maxBuffer: 64 * 1024 * 1024,
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new GcfsError(ErrorCode.FailedPrecondition, `${what}: ${cmd} is not installed`, {
        cause: err,
        hint: options.hint ?? 'scripts/setup installs the tools the image builder runs',
      });
    }
    const tail = `${e.stderr ?? ''}\n${e.stdout ?? ''}`.trim().split('\n').slice(-8).join(' | ');
    throw new GcfsError(ErrorCode.Internal, `${what} failed: ${tail}`, { cause: err });
  }
}

/** Visit every object under `dir` (lstat, parents before children). */
export async function walk(dir: string, visit: (path: string, st: Stats) => Promise<void>): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    await visit(path, st);
    if (st.isDirectory()) await walk(path, visit);
  }
}

/** Unmount everything mounted at or below `dir`, deepest first (an interrupted build may leave some). */
export async function unmountUnder(dir: string): Promise<void> {
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
  for (const point of points) await runTool('umount', ['-l', point], `unmounting ${point}`);
}

/** Remove a build tree without ever descending into a mount (a bind of /dev must not be emptied). */
export async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir);
  await runTool('rm', ['-rf', '--one-file-system', '--', dir], `removing ${dir}`);
}

/**
 * `<cacheDir>/<key>/`, built by `build` in a temporary sibling and renamed into place with a
 * `done` marker holding `build`'s JSON result: an interrupted build leaves only a temporary dir
 * (removed once its process is gone) and a finished one is reused as it is.
 */
export async function cached<T>(
  cacheDir: string,
  key: string,
  build: (dir: string) => Promise<T>,
): Promise<T> {
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
