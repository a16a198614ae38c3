// A machine booted with systemd, for tests of deploy/systemd on hosts that are not (PID 1 is
// not systemd here): a Debian rootfs (debootstrap, built once and kept in /var/tmp) copied for
// each machine and booted by systemd-nspawn (Debian package systemd-container, installed by
// scripts/setup) in its own PID, mount and network namespaces (a private one, or a given one
// such as a ShapedNetwork's, to reach servers on the host), with /dev/fuse. Commands run
// inside through nsenter, as root of the machine; its mounts never reach the host.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';

const execFileAsync = promisify(execFile);
const BASE_CACHE = '/var/tmp/gcfs-systemd-machine';
const SUITE = 'bookworm';
/** A node: systemd, containerd, what gcfs needs at run time (libfuse2, fuse3's fusermount). */
const PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'containerd',
  'libfuse2',
  'fuse3',
  'procps',
  'ca-certificates',
];

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SystemdMachine {
  /** Its root file system, as the host sees it (write files into it from there). */
  readonly root: string;
  /** Its PID 1 on the host: /proc/<pid>/root/... reaches what its own mounts hold (its /run). */
  readonly pid: number;
  /** Run a command inside (all its namespaces, as its root); never rejects for an exit code. */
  exec(command: string, ...args: string[]): Promise<ExecResult>;
  /** Power it off (or kill it after 30 s) and remove its root. */
  stop(): Promise<void>;
}

/** The cached base rootfs, made by debootstrap the first time (needs the Debian mirror). */
async function baseRootfs(mirror: string): Promise<string> {
  const key = `${SUITE}-${PACKAGES.join(',')}`.replace(/[^a-z0-9,.-]/g, '_');
  const final = join(BASE_CACHE, key);
  if (
    await access(join(final, 'etc/os-release')).then(
      () => true,
      () => false,
    )
  )
    return final;
  await mkdir(BASE_CACHE, { recursive: true });
  const tmp = `${final}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await execFileAsync(
      'debootstrap',
      ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, tmp, mirror],
      { maxBuffer: 64 * 2 ** 20 },
    );
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // Another test process may have won the rename: its tree is as good.
    if (
      await access(join(final, 'etc/os-release')).then(
        () => true,
        () => false,
      )
    )
      return final;
    throw new GcfsError(ErrorCode.Internal, `debootstrap of ${SUITE} from ${mirror} failed`, {
      cause: err,
      hint: 'scripts/setup installs debootstrap; is the Debian mirror reachable?',
    });
  }
  return final;
}

/**
 * The machine's PID 1, once nspawn has started it: the child of nspawn in a PID namespace of
 * its own that runs systemd. nspawn's first child is an intermediate process (the "outer
 * child") that exits once it has cloned the machine's init: taking it failed a boot.
 */
async function machineInit(nspawn: ChildProcess): Promise<number> {
  const ours = await readlink('/proc/self/ns/pid');
  for (let i = 0; i < 400; i++) {
    const children = await readFile(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`, 'utf8').catch(
      () => '',
    );
    for (const pid of children.trim().split(/\s+/).map(Number)) {
      if (!(pid > 0)) continue;
      const [ns, comm] = await Promise.all([
        readlink(`/proc/${pid}/ns/pid`).catch(() => ours),
        readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''),
      ]);
      if (ns !== ours && comm.trim() === 'systemd') return pid;
    }
    if (nspawn.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new GcfsError(ErrorCode.Internal, 'systemd-nspawn did not start the machine');
}

/** Boot a fresh machine whose root is `dir` (created; removed by stop()). */
export async function bootSystemdMachine(
  dir: string,
  o: {
    mirror?: string;
    /** A network namespace (/run/netns/NAME) instead of a private one. */
    netns?: string;
  } = {},
): Promise<SystemdMachine> {
  const base = await baseRootfs(o.mirror ?? 'http://deb.debian.org/debian');
  await execFileAsync('cp', ['-a', '--reflink=auto', base, dir]);
  // debootstrap leaves no /etc/hosts (the installer writes it): a node has one, CRI copies it
  // into every pod.
  await writeFile(join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost\n', { flag: 'wx' }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    },
  );
  // --keep-unit and --register=no: no systemd or machined on the host to ask for a scope.
  const nspawn = spawn(
    'systemd-nspawn',
    [
      '--boot',
      `--directory=${dir}`,
      '--keep-unit',
      '--register=no',
      o.netns === undefined ? '--private-network' : `--network-namespace-path=${o.netns}`,
      '--console=pipe',
      '--bind=/dev/fuse',
      '--capability=all',
      // runc gives each container a session keyring, which nspawn's seccomp filter refuses.
      '--system-call-filter=@keyring',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  for (const stream of [nspawn.stdout, nspawn.stderr]) {
    stream.on('data', (chunk) => {
      output += chunk;
    });
  }
  let init: number | undefined;
  const stop = async () => {
    if (nspawn.exitCode === null && nspawn.signalCode === null) {
      nspawn.kill('SIGTERM'); // nspawn powers the machine off
      // A machine that does not power off (its root removed under it: no poweroff.target)
      // would outlive nspawn with all its services: its PID 1 goes first, which ends every
      // process of its PID namespace (nspawn's child until nspawn exits: the pid is its own).
      const timer = setTimeout(() => {
        try {
          if (init !== undefined) process.kill(init, 'SIGKILL');
        } catch {
          // gone already
        }
        setTimeout(() => nspawn.kill('SIGKILL'), 5_000).unref();
      }, 30_000);
      await once(nspawn, 'exit');
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    init = await machineInit(nspawn);
    const pid = init;
    const exec = (command: string, ...args: string[]) =>
      new Promise<ExecResult>((resolve) =>
        execFile(
          'nsenter',
          ['-t', String(pid), '-a', command, ...args],
          { maxBuffer: 16 * 2 ** 20 },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        ),
      );
    // Booted: its systemd answers and has finished starting up (degraded is fine here).
    for (let i = 0; ; i++) {
      const state = (await exec('systemctl', 'is-system-running', '--wait')).stdout.trim();
      if (['running', 'degraded'].includes(state)) break;
      if (i === 100 || nspawn.exitCode !== null) {
        throw new GcfsError(
          ErrorCode.Internal,
          `the systemd machine did not boot (${state}): ${output.slice(-2000)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // nspawn mounts cgroup v1 hierarchies read-only; a node's are writable, and runc (under
    // containerd's pods) makes its cgroups there. None on a cgroup v2 host (delegated there).
    const remount =
      'for d in $(findmnt -n -t cgroup -o TARGET); do mount -o remount,rw,bind "$d" || exit 1; done';
    const remounted = await exec('sh', '-c', remount);
    if (remounted.code !== 0)
      throw new GcfsError(ErrorCode.Internal, `cgroup hierarchies stay read-only: ${remounted.stderr}`);
    return { root: dir, pid, exec, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
