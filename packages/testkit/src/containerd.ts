import { execFile } from 'node:child_process';
import { readdir, readFile, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { CriClient } from './cri.js';
import { listProcesses, type ManagedProcess, type ProcInfo, startProcess } from './process.js';
import { makeTempDir } from './temp.js';

const CONTAINERD_BINARY = '/usr/bin/containerd';
const execFileAsync = promisify(execFile);

export interface ContainerdOptions {
  /** The CRI plugin's snapshotter: 'overlayfs' (default) or the name of a proxy snapshotter. */
  snapshotter?: string;
  /** Proxy snapshotter plugins by name: the unix socket each one serves the snapshots API on. */
  proxySnapshotters?: Record<string, string>;
  /** `HOST:PORT` of a plain-HTTP registry that CRI pulls from (a mirror entry with http://). */
  registryHost: string;
  /** Full reference of the sandbox (pause) image, pullable from `registryHost`. */
  sandboxImage: string;
  /** CRI's disable_snapshot_annotations is false unless this is false (kubelet-driven pulls then carry no image labels). */
  snapshotAnnotations?: boolean;
  /** CRI's discard_unpacked_layers (GKE's config sets it): layer blobs go once unpacked. */
  discardUnpackedLayers?: boolean;
  /** TOML appended to the generated config.toml (e.g. more plugin settings). */
  extraConfig?: string;
  /** Files the config imports (`imports = [...]`), as a node's drop-in configuration. */
  imports?: string[];
  readyTimeoutMs?: number;
}

export interface RunningContainerd {
  /** containerd's gRPC unix socket, which also serves CRI. */
  readonly address: string;
  readonly rootDir: string;
  readonly stateDir: string;
  readonly configFile: string;
  readonly logFile: string;
  logs(): Promise<string>;
  /**
   * Stop containerd (SIGTERM) and start it again with the same config, root and state, as a
   * node's containerd restart: shims and containers keep running, snapshots stay.
   */
  restart(): Promise<void>;
  /**
   * Kill containerd, every shim it started and their containers, unmount whatever is left under
   * its dirs and remove them. Idempotent; meant for t.after, so it also works half-started.
   */
  stop(): Promise<void>;
}

/**
 * Debian's containerd 1.6 with its own root, state, socket and a generated config (version 2)
 * with the CRI plugin set up for tests: host-network pods (no CNI), runc, the given sandbox
 * image and snapshotter, snapshot annotations on, and `restrict_oom_score_adj` (these machines
 * refuse the sandbox's negative oom_score_adj).
 */
export async function startContainerd(options: ContainerdOptions): Promise<RunningContainerd> {
  const dir = await makeTempDir('gcfs-containerd-');
  const rootDir = join(dir.path, 'root');
  const stateDir = join(dir.path, 'state');
  const address = join(dir.path, 'containerd.sock');
  const configFile = join(dir.path, 'config.toml');
  const logFile = join(dir.path, 'containerd.log');
  let proc: ManagedProcess | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await proc?.stop();
      await killShims(dir.path);
      await releaseTasks(stateDir);
    } finally {
      // Never remove dirs through a mount that is still there.
      await unmountUnder(dir.path);
      await dir.cleanup();
    }
  };
  const launch = () =>
    withCriClient(address, (cri) =>
      startProcess({
        name: 'containerd',
        command: CONTAINERD_BINARY,
        args: ['--config', configFile, '--log-level', 'debug'],
        // A fixed PATH: containerd finds containerd-shim-runc-v2 and runc in Debian's dirs.
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir.path },
        logFile,
        // CRI answers "server is not initialized yet" for a while after containerd has booted.
        ready: {
          check: () =>
            cri.version().then(
              () => true,
              () => false,
            ),
        },
        readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
        stopTimeoutMs: 10_000,
      }),
    );
  try {
    await writeFile(configFile, containerdConfig({ ...options, dir: dir.path, rootDir, stateDir, address }));
    proc = await launch();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address,
    rootDir,
    stateDir,
    configFile,
    logFile,
    logs: () => readFile(logFile, 'utf8'),
    async restart() {
      if (stopped) throw new GcfsError(ErrorCode.FailedPrecondition, 'containerd already stopped');
      await proc?.stop();
      proc = undefined;
      proc = await launch();
    },
    stop,
  };
}

async function withCriClient<T>(address: string, use: (client: CriClient) => Promise<T>): Promise<T> {
  const client = new CriClient(address, { deadlineMs: 2000 });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

interface ConfigInput extends ContainerdOptions {
  dir: string;
  rootDir: string;
  stateDir: string;
  address: string;
}

const CRI = 'plugins."io.containerd.grpc.v1.cri"';

function containerdConfig(input: ConfigInput): string {
  const q = JSON.stringify; // TOML basic strings accept JSON's escapes
  const proxies = Object.entries(input.proxySnapshotters ?? {}).map(
    ([name, socket]) => `[proxy_plugins.${q(name)}]\n  type = "snapshot"\n  address = ${q(socket)}\n`,
  );
  return `version = 2
imports = [${(input.imports ?? []).map((file) => q(file)).join(', ')}]
root = ${q(input.rootDir)}
state = ${q(input.stateDir)}

[grpc]
  address = ${q(input.address)}

[ttrpc]
  address = ${q(`${input.address}.ttrpc`)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(input.dir, 'opt'))}

[${CRI}]
  sandbox_image = ${q(input.sandboxImage)}
  restrict_oom_score_adj = true
  # Port 0: instances running side by side must not fight over the default streaming port.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${CRI}.containerd]
  snapshotter = ${q(input.snapshotter ?? 'overlayfs')}
  disable_snapshot_annotations = ${input.snapshotAnnotations === false}
  discard_unpacked_layers = ${input.discardUnpackedLayers === true}
  default_runtime_name = "runc"

[${CRI}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

# runc's state in our dir rather than the shared /run/containerd/runc.
[${CRI}.containerd.runtimes.runc.options]
  Root = ${q(join(input.dir, 'runc'))}

# No CNI: tests run host-network pods only; empty dirs keep the host's CNI config out.
[${CRI}.cni]
  bin_dir = ${q(join(input.dir, 'cni-bin'))}
  conf_dir = ${q(join(input.dir, 'cni-conf'))}

[${CRI}.registry.mirrors.${q(input.registryHost)}]
  endpoint = [${q(`http://${input.registryHost}`)}]

${proxies.join('\n')}
${input.extraConfig ?? ''}
`;
}

/**
 * SIGKILL every containerd-shim-runc-v2 started for this instance (its args name our socket,
 * its cwd is in our state dir) together with everything below it: the containers' processes
 * would otherwise be reparented and outlive the test.
 */
async function killShims(dir: string): Promise<void> {
  const all = await listProcesses();
  const shims: ProcInfo[] = [];
  for (const p of all) {
    if (!p.comm.startsWith('containerd-shim')) continue;
    const cwd = await readlink(`/proc/${p.pid}/cwd`).catch(() => '');
    if (p.cmdline.includes(dir) || cwd.startsWith(dir)) shims.push(p);
  }
  const doomed = new Set<number>();
  const visit = (pid: number) => {
    doomed.add(pid);
    for (const child of all) if (child.ppid === pid && !doomed.has(child.pid)) visit(child.pid);
  };
  for (const shim of shims) visit(shim.pid);
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Wait (bounded) until they are gone so that their mounts can be taken down.
  for (let i = 0; i < 100 && doomed.size > 0; i++) {
    for (const pid of doomed) if (!isAlive(pid)) doomed.delete(pid);
    if (doomed.size > 0) await new Promise((r) => setTimeout(r, 50));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const TASKS_DIR = 'io.containerd.runtime.v2.task';
const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * What containerd 1.6 keeps outside its own dirs for a task whose shim was killed: the shim's
 * socket (/run/containerd/s/<hash>, named in the bundle's `address` file) and the task's cgroup
 * (`/<namespace>/<id>` in each hierarchy, empty once its processes are gone).
 */
async function releaseTasks(stateDir: string): Promise<void> {
  const tasksDir = join(stateDir, TASKS_DIR);
  const hierarchies = [CGROUP_ROOT, ...(await subdirs(CGROUP_ROOT))];
  for (const namespace of await readdir(tasksDir).catch(() => [])) {
    for (const id of await readdir(join(tasksDir, namespace)).catch(() => [])) {
      const address = await readFile(join(tasksDir, namespace, id, 'address'), 'utf8').catch(() => '');
      if (address.startsWith('unix:///run/containerd/s/'))
        await rm(address.slice('unix://'.length), { force: true });
      for (const hierarchy of hierarchies) await rmdir(join(hierarchy, namespace, id)).catch(() => {});
    }
  }
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}

/** Lazily unmount every mount point under `dir`, deepest first, until none is left. */
async function unmountUnder(dir: string): Promise<void> {
  let points = await mountPointsUnder(dir);
  for (let pass = 0; pass < 3 && points.length > 0; pass++) {
    // A point may be mounted twice; an error here is judged by what mountinfo says after.
    for (const point of points) await execFileAsync('umount', ['-l', point]).catch(() => {});
    points = await mountPointsUnder(dir);
  }
  if (points.length > 0)
    throw new GcfsError(ErrorCode.Internal, `still mounted under ${dir}: ${points.join(', ')}`);
}

async function mountPointsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) =>
      p.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))),
    );
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
