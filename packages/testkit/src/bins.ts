// The project's executables run as an operator runs them: from their bin in the repository (a
// shell wrapper that picks the project's Node 24), with Debian's /usr/bin first on PATH, where
// the machine's Node 20 is, so a wrapper that used the wrong node would show.

import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../../../../', import.meta.url).pathname;

/** `packages/<name>/bin/<name>` of this repository (gcfsd, cfsd, gcfsctl). */
export function repoBin(name: 'gcfsd' | 'cfsd' | 'gcfsctl'): string {
  return join(ROOT, 'packages', name, 'bin', name);
}

export interface BinRun {
  code: number;
  stdout: string;
  stderr: string;
}

const binEnv = () => ({ ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` });

export interface RunningBin {
  /** Resolves once stdout holds `text` (rejects if the child ends first). */
  until(text: string): Promise<void>;
  /** Its end, as runBin gives it. */
  done: Promise<BinRun>;
}

/** Start `bin` and watch its output while it runs (a wait that lasts, a progress). */
export function spawnBin(bin: string, args: readonly string[]): RunningBin {
  const child = spawn(bin, args, { env: binEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const watch of watchers) watch();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<BinRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      for (const watch of watchers) watch();
      if (code === null) reject(new Error(`${bin} was killed by a signal: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
  // The timeout only stops a hung child from hanging the suite.
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  void done.finally(() => clearTimeout(timer)).catch(() => {});
  return {
    done,
    until: (text) =>
      new Promise<void>((resolve, reject) => {
        const watch = () => {
          if (stdout.includes(text)) {
            watchers.delete(watch);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            watchers.delete(watch);
            reject(new Error(`${bin} ended before it printed ${JSON.stringify(text)}: ${stdout}${stderr}`));
          }
        };
        watchers.add(watch);
        watch();
      }),
  };
}

/** Run `bin` to its end; its exit code and output (a child killed by a signal rejects). */
export function runBin(
  bin: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<BinRun> {
  const env = binEnv();
  return new Promise((resolve, reject) => {
    // The timeout only stops a hung child from hanging the suite.
    execFile(
      bin,
      args,
      { cwd: options.cwd, env, timeout: 300_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        if (typeof code !== 'number') reject(err);
        else resolve({ code, stdout, stderr });
      },
    );
  });
}
