// A local user without privileges (nobody, uid and gid 65534, no supplementary groups), for
// tests of who can read what on a node: the probes run as a separate process through
// setpriv, so the kernel checks exactly what it would for that user.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
export const NOBODY = 65534;

export interface NobodyProbe {
  /** Whether the command exited 0. */
  ok: boolean;
  /** Its stdout then stderr (`Permission denied` when the kernel refused). */
  output: string;
}

/** Run `command` as nobody. */
export async function asNobody(command: string, ...args: string[]): Promise<NobodyProbe> {
  try {
    const { stdout, stderr } = await execFileAsync('setpriv', [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      command,
      ...args,
    ]);
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const failed = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** Connect to the Unix socket `path` as nobody: 'connected', or the error code (EACCES). */
export async function connectAsNobody(path: string): Promise<string> {
  const script =
    "require('node:net').connect(process.argv[1])" +
    ".on('connect', () => { console.log('connected'); process.exit(0); })" +
    ".on('error', (e) => { console.log(e.code); process.exit(1); })";
  return (await asNobody(process.execPath, '-e', script, path)).output.trim();
}
