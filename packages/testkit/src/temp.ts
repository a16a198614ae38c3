import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  /** Remove the directory and everything in it; safe to call twice. */
  cleanup(): Promise<void>;
}

/** A fresh directory under os.tmpdir(), named `<prefix>XXXXXX`. */
export async function makeTempDir(prefix = 'gcfs-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/**
 * Anything with node:test's `after` hook: a TestContext (`t`), or the module-level `after`
 * function wrapped as `{ after }` for suite-wide resources.
 */
export interface AfterHook {
  after(fn: () => unknown): void;
}

/** Register `dispose` to run when the test (or suite) ends, pass or fail, and return `resource`. */
export function disposeAfter<T>(hook: AfterHook, resource: T, dispose: (resource: T) => unknown): T {
  hook.after(() => dispose(resource));
  return resource;
}

/** makeTempDir() whose removal is registered with the test's `after` hook. */
export async function tempDirFor(hook: AfterHook, prefix?: string): Promise<TempDir> {
  return disposeAfter(hook, await makeTempDir(prefix), (dir) => dir.cleanup());
}
