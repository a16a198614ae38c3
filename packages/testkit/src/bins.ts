// The project's executables run as an operator runs them: from their bin in the repository (a
// shell wrapper that picks the project's Node 24), with Debian's /usr/bin first on PATH, where
// the machine's Node 20 is, so a wrapper that used the wrong node would show.

import { execFile } from 'node:child_process';
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

/** Run `bin` to its end; its exit code and output (a child killed by a signal rejects). */
export function runBin(
  bin: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<BinRun> {
  const env = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` };
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
