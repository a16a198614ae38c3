// Our node and cluster processes as a node runs them, for end-to-end tests, the demo and the
// benchmarks: cfsd (file store), `gcfsd --downloader` and `gcfsd` (FUSE + containerd
// snapshotter on its socket). Started from the repository's bins, each with its own log file.

import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { repoBin } from './bins.js';
import { curl } from './curl.js';
import { freePort, type ManagedProcess, type ProcessExit, startProcess } from './process.js';
import type { ShapedNetwork } from './shaped-network.js';
import { makeTempDir } from './temp.js';

const execFileAsync = promisify(execFile);
const GCFSD = repoBin('gcfsd');
const CFSD = repoBin('cfsd');

export interface GcfsStackOptions {
  /** Registry host (or host:port) that cfsd and the downloader reach over plain HTTP. */
  insecureRegistry: string;
  /** cfsd's store directory; default: in the stack's dir (a cold index). */
  cfsdStore?: string;
  /** Start the downloader with the rest (default true); otherwise call startDownloader(). */
  downloader?: boolean;
  /** More flags for the FUSE gcfsd (e.g. --gc_period=1s). */
  gcfsdFlags?: readonly string[];
  /** More environment for the FUSE gcfsd (e.g. NODE_NAME, NOTIFY_SOCKET). */
  gcfsdEnv?: NodeJS.ProcessEnv;
  /**
   * gcfsd's --min_streamed_image_size_mb. Default 0: test images are a few KiB and must stream;
   * 'default' leaves gcfsd's own (the benchmarks and the demo run as a node does).
   */
  minStreamedImageMb?: number | 'default';
  /** Where logs and state go; default a temp dir removed by stop(). */
  dir?: string;
  /** Run cfsd inside a ShapedNetwork, listening on `address` (its nsAddress); gcfsd dials it there. */
  cfsdNetwork?: { wrap: ShapedNetwork['wrap']; address: string };
  /** host:port of a cfsd that runs already (a regional service outliving nodes): none is started. */
  cfsdAddress?: string;
  /**
   * gcfsd's pull-secret keychain on `keychainSocket`, proxying CRI's image service to this
   * containerd socket (which need not exist yet).
   */
  keychain?: { containerdAddress: string };
}

export interface CfsdProcessOptions {
  /** host:port to listen on. */
  address: string;
  store: string;
  insecureRegistry: string;
  logFile: string;
  /** Run it inside a ShapedNetwork. */
  wrap?: ShapedNetwork['wrap'];
}

/** cfsd from the repository's bin, serving once it says so. */
export function startCfsdProcess(o: CfsdProcessOptions): Promise<ManagedProcess> {
  const args = [
    `--listen=${o.address}`,
    `--store=file://${o.store}`,
    `--insecure_registry=${o.insecureRegistry}`,
    '--metrics_listen=',
  ];
  return startProcess({
    name: 'cfsd',
    ...(o.wrap?.(CFSD, args) ?? { command: CFSD, args }),
    ready: { logLine: /cfsd serving/ },
    logFile: o.logFile,
  });
}

export interface RunningGcfsStack {
  readonly dir: string;
  readonly mountPoint: string;
  /** For containerd's [proxy_plugins.gcfs] address. */
  readonly snapshotterSocket: string;
  /** gcfsd's admin API (gcfs.gcfsd.v1.Admin). */
  readonly adminSocket: string;
  /** gcfsd's keychain (UpdateCreds and CRI's image service), with the `keychain` option. */
  readonly keychainSocket: string;
  readonly downloaderSocket: string;
  readonly snapshotterRoot: string;
  readonly cacheDir: string;
  readonly metricsPort: number;
  readonly cfsdAddress: string;
  /** cfsd's store directory (file store) when the stack started cfsd. */
  readonly cfsdStore: string | undefined;
  startDownloader(): Promise<void>;
  /** Stop cfsd (SIGTERM, or SIGKILL with `crash`). */
  stopCfsd(options?: { crash?: boolean }): Promise<void>;
  startCfsd(): Promise<void>;
  /** Stop gcfsd (SIGTERM, or SIGKILL with `crash`) and start it again with the same flags. */
  restartGcfsd(options?: { crash?: boolean }): Promise<void>;
  /** restartGcfsd in two steps, for what happens while gcfsd is down. */
  stopGcfsd(options?: { crash?: boolean }): Promise<void>;
  startGcfsd(): Promise<void>;
  /** Sum of a gcfsd metric's samples whose line contains every one of `labels` (e.g. 'source="remote"'). */
  metric(name: string, ...labels: string[]): Promise<number>;
  /** gcfsd's whole /metrics page. */
  metricsText(): Promise<string>;
  logs(): Promise<{ cfsd: string; gcfsd: string; downloader: string }>;
  /** The processes it started that have exited since, and how (empty: all alive). */
  exited(): Partial<Record<'cfsd' | 'downloader' | 'gcfsd', ProcessExit>>;
  /** Stop everything it started (unmounting gcfsd's mount), then remove its dir unless given. */
  stop(): Promise<void>;
}

export async function startGcfsStack(options: GcfsStackOptions): Promise<RunningGcfsStack> {
  const temp = options.dir === undefined ? await makeTempDir('gcfs-stack-') : undefined;
  const dir = options.dir ?? temp!.path;
  const run = join(dir, 'run');
  await mkdir(run, { recursive: true });
  const mountPoint = join(run, 'mnt');
  const snapshotterRoot = join(dir, 'snapshotter');
  const cacheDir = join(snapshotterRoot, 'layers');
  const snapshotterSocket = join(run, 'snapshotter.sock');
  const downloaderSocket = join(run, 'downloader.sock');
  const keychainSocket = join(run, 'keychain.sock');
  const cfsdPort = await freePort();
  const metricsPort = await freePort();
  // A port free on the host is free in a fresh namespace too.
  const cfsdAddress = options.cfsdAddress ?? `${options.cfsdNetwork?.address ?? '127.0.0.1'}:${cfsdPort}`;
  const common = [
    `--downloader_uds_path=${downloaderSocket}`,
    `--layer_cache_dir=${cacheDir}`,
    `--insecure_registry=${options.insecureRegistry}`,
  ];
  const processes: Record<'cfsd' | 'downloader' | 'gcfsd', ManagedProcess | undefined> = {
    cfsd: undefined,
    downloader: undefined,
    gcfsd: undefined,
  };
  const log = (name: string) => join(dir, `${name}.log`);
  const cfsdStore = options.cfsdStore ?? join(dir, 'cfsd-store');

  const startCfsd = async () => {
    if (options.cfsdAddress !== undefined) {
      throw new GcfsError(ErrorCode.FailedPrecondition, 'this stack uses a cfsd it did not start');
    }
    processes.cfsd = await startCfsdProcess({
      address: cfsdAddress,
      store: cfsdStore,
      insecureRegistry: options.insecureRegistry,
      logFile: log('cfsd'),
      wrap: options.cfsdNetwork?.wrap,
    });
  };
  const startDownloader = async () => {
    processes.downloader = await startProcess({
      name: 'gcfsd --downloader',
      command: GCFSD,
      args: ['--downloader', ...common],
      ready: { logLine: /Layer downloader serving/ },
      logFile: log('downloader'),
    });
  };
  const startGcfsd = async () => {
    processes.gcfsd = await startProcess({
      name: 'gcfsd',
      command: GCFSD,
      args: [
        ...common,
        `--mount_point=${mountPoint}`,
        `--addr=${cfsdAddress}`,
        `--images_in_use_db_path=${join(dir, 'gcfsd', 'images_in_use.db')}`,
        `--snapshotter_uds_path=${snapshotterSocket}`,
        `--snapshotter_root=${snapshotterRoot}`,
        `--port=${metricsPort}`,
        '--client_uid=gcfs-stack',
        ...(options.minStreamedImageMb === 'default'
          ? []
          : [`--min_streamed_image_size_mb=${options.minStreamedImageMb ?? 0}`]),
        ...(options.keychain === undefined
          ? []
          : [
              '--enable_pull_secret_keychain',
              `--keychain_uds_path=${keychainSocket}`,
              `--containerd_address=${options.keychain.containerdAddress}`,
            ]),
        ...(options.gcfsdFlags ?? []),
      ],
      ...(options.gcfsdEnv === undefined ? {} : { env: { ...process.env, ...options.gcfsdEnv } }),
      ready: { logLine: /GCFSD: serving/ },
      logFile: log('gcfsd'),
      stopTimeoutMs: 15_000,
    });
  };
  /** Stop one process: SIGTERM, or SIGKILL first with `crash`. */
  const stopOne = async (name: keyof typeof processes, { crash = false } = {}) => {
    const pid = processes[name]?.pid;
    if (crash && pid !== undefined) process.kill(pid, 'SIGKILL');
    await processes[name]?.stop();
    processes[name] = undefined;
  };

  const stack: RunningGcfsStack = {
    dir,
    mountPoint,
    snapshotterSocket,
    // gcfsd keeps it beside the mount point.
    adminSocket: join(run, 'admin.sock'),
    keychainSocket,
    downloaderSocket,
    snapshotterRoot,
    cacheDir,
    metricsPort,
    cfsdAddress,
    startDownloader,
    startCfsd,
    cfsdStore: options.cfsdAddress === undefined ? cfsdStore : undefined,
    stopCfsd: (options) => stopOne('cfsd', options),
    async restartGcfsd(options) {
      await stopOne('gcfsd', options);
      await startGcfsd();
    },
    stopGcfsd: (options) => stopOne('gcfsd', options),
    startGcfsd,
    async metricsText() {
      return (await curl(['-sS', `http://127.0.0.1:${metricsPort}/metrics`])).body.toString();
    },
    async metric(name, ...labels) {
      return (await stack.metricsText())
        .split('\n')
        .filter((line) => line.startsWith(name) && labels.every((label) => line.includes(label)))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    },
    async logs() {
      const read = (name: string) => readFile(log(name), 'utf8').catch(() => '');
      return { cfsd: await read('cfsd'), gcfsd: await read('gcfsd'), downloader: await read('downloader') };
    },
    exited() {
      return Object.fromEntries(
        Object.entries(processes).flatMap(([name, child]) =>
          child?.exitInfo === undefined ? [] : [[name, child.exitInfo]],
        ),
      );
    },
    async stop() {
      for (const name of ['gcfsd', 'downloader', 'cfsd'] as const) await stopOne(name);
      // A gcfsd that could not unmount (busy, killed) leaves its mount: detach it.
      const mounts = await readFile('/proc/self/mountinfo', 'utf8');
      if (mounts.includes(` ${mountPoint} `))
        await execFileAsync('umount', ['-l', mountPoint]).catch(() => {});
      await temp?.cleanup();
    },
  };
  try {
    if (options.cfsdAddress === undefined) await startCfsd();
    if (options.downloader !== false) await startDownloader();
    await startGcfsd();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
