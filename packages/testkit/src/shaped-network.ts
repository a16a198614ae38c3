// A network namespace joined to the host by a veth pair whose two ends are rate-limited with tc
// tbf: the benchmarks run the registry and cfsd in it so that node-side traffic (containerd,
// gcfsd, the downloader on the host) crosses a link of known bandwidth. netem is not available
// on our kernels, so bandwidth is the only property shaped (no added delay or loss).

import { execFile, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';

const execFileAsync = promisify(execFile);

export interface ShapedNetworkOptions {
  /** Rate of each direction in Mbit/s; undefined = a plain, unshaped veth. */
  rateMbit?: number;
  /** Netns name; default `gcfs-<pid>-<n>`. */
  name?: string;
}

export interface ShapedNetwork {
  /** Netns name, unique per instance. */
  readonly name: string;
  /** Host side of the veth, e.g. 10.201.x.1. */
  readonly hostAddress: string;
  /** Inside the netns, e.g. 10.201.x.2: servers listen here. */
  readonly nsAddress: string;
  readonly rateMbit: number | undefined;
  /** Host-side interface name (shaped, carries host → namespace traffic). */
  readonly hostVeth: string;
  /** Interface name inside the namespace (shaped, carries namespace → host traffic). */
  readonly nsVeth: string;
  /** Wrap a command so it runs inside the namespace: `ip netns exec <name> command ...args`. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Bytes the host side received from the namespace so far. */
  bytesFromNamespace(): Promise<number>;
  /** Delete the veth pair and the netns. Kills nothing (stop the servers first). Idempotent. */
  stop(): Promise<void>;
}

// 10.201.0.0/16 cut into /30s: 16384 links. The host veth is named after its subnet index, so
// creating it is an atomic claim of the subnet across concurrently running test processes.
const SUBNETS = 16384;
const NAME_PATTERN = /^gcfs-(\d+)-\d+$/;
let counter = 0;
const live = new Map<string, string | undefined>(); // netns name → host veth, once created
let exitHookInstalled = false;

export async function startShapedNetwork(options: ShapedNetworkOptions = {}): Promise<ShapedNetwork> {
  const { rateMbit } = options;
  if (rateMbit !== undefined && !(rateMbit > 0))
    throw new GcfsError(ErrorCode.InvalidArgument, `shaped network: bad rate ${rateMbit} Mbit/s`);
  await removeStaleNamespaces();
  const name = options.name ?? `gcfs-${process.pid}-${counter++}`;
  await ip(['netns', 'add', name]);
  installExitHook();
  live.set(name, undefined);
  let hostVeth: string | undefined;
  try {
    const index = await claimVeth(name);
    hostVeth = vethName(index);
    const nsVeth = `${hostVeth.slice(0, -1)}n`;
    live.set(name, hostVeth);
    const base = `10.201.${index >> 6}.${(index & 63) << 2}`;
    const hostAddress = offset(base, 1);
    const nsAddress = offset(base, 2);
    await ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostVeth]);
    await ip(['link', 'set', hostVeth, 'up']);
    await ip(['-n', name, 'addr', 'add', `${nsAddress}/30`, 'dev', nsVeth]);
    await ip(['-n', name, 'link', 'set', nsVeth, 'up']);
    // Servers and their own clients (cfsd → registry) talk over lo inside the namespace.
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
    if (rateMbit !== undefined) {
      await shape([], hostVeth, rateMbit);
      await shape(['-n', name], nsVeth, rateMbit);
    }
    const stats = `/sys/class/net/${hostVeth}/statistics/rx_bytes`;
    let stopped = false;
    return {
      name,
      hostAddress,
      nsAddress,
      rateMbit,
      hostVeth,
      nsVeth,
      wrap: (command, args) => ({ command: 'ip', args: ['netns', 'exec', name, command, ...args] }),
      bytesFromNamespace: async () => Number((await readFile(stats, 'utf8')).trim()),
      async stop() {
        if (stopped) return;
        stopped = true;
        await teardown(name, hostVeth);
      },
    };
  } catch (err) {
    await teardown(name, hostVeth).catch(() => {}); // the first failure is the one to report
    throw err;
  }
}

function vethName(index: number): string {
  return `gcfs${index}h`; // at most 10 characters, under IFNAMSIZ
}

/** Create the veth pair on the first free subnet index, starting from one spread by pid. */
async function claimVeth(netns: string): Promise<number> {
  const start = (process.pid * 37 + counter * 1031) % SUBNETS;
  for (let i = 0; i < 64; i++) {
    const index = (start + i) % SUBNETS;
    const host = vethName(index);
    try {
      await execFileAsync('ip', [
        'link',
        'add',
        host,
        'type',
        'veth',
        'peer',
        'name',
        `gcfs${index}n`,
        'netns',
        netns,
      ]);
      return index;
    } catch (err) {
      // Taken by another instance (EEXIST): try the next one; anything else is real.
      if (!/exists/i.test(String((err as { stderr?: string }).stderr)))
        throw ipError(['link', 'add', host], err);
    }
  }
  throw new GcfsError(ErrorCode.Internal, 'shaped network: no free 10.201.0.0/16 subnet in 64 tries');
}

/**
 * tbf on the egress of one veth end. Burst: at least 32 KiB, and enough for 4 ms of traffic so
 * that timer granularity does not cap the rate at 1 Gbit/s; queue: 50 ms of traffic.
 */
async function shape(nsArgs: string[], dev: string, rateMbit: number): Promise<void> {
  const bytesPerSecond = rateMbit * 125_000;
  const burst = Math.max(32 * 1024, Math.ceil(bytesPerSecond / 250));
  const limit = Math.ceil(bytesPerSecond * 0.05) + burst;
  await tc([
    ...nsArgs,
    'qdisc',
    'replace',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    `${rateMbit}mbit`,
    'burst',
    String(burst),
    'limit',
    String(limit),
  ]);
}

/** Deleting the host veth destroys its peer; then the netns (alive while processes use it). */
async function teardown(name: string, hostVeth: string | undefined): Promise<void> {
  live.delete(name);
  if (hostVeth !== undefined) await execFileAsync('ip', ['link', 'del', hostVeth]).catch(() => {}); // gone with a dead netns
  await ip(['netns', 'del', name]);
}

/** Namespaces of ours left behind by a test process that died (its pid no longer exists). */
async function removeStaleNamespaces(): Promise<void> {
  const list = await ip(['netns', 'list']);
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = NAME_PATTERN.exec(name)?.[1];
    if (pid === undefined || pidAlive(Number(pid))) continue;
    await execFileAsync('ip', ['netns', 'del', name]).catch(() => {});
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A test process that exits without stop() must not leave veths and namespaces behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [name, veth] of live) {
      if (veth !== undefined) spawnSync('ip', ['link', 'del', veth], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    }
    live.clear();
  });
}

function offset(base: string, n: number): string {
  const parts = base.split('.').map(Number);
  parts[3] = (parts[3] ?? 0) + n;
  return parts.join('.');
}

async function ip(args: string[]): Promise<string> {
  try {
    return (await execFileAsync('ip', args)).stdout;
  } catch (err) {
    throw ipError(args, err);
  }
}

async function tc(args: string[]): Promise<string> {
  try {
    return (await execFileAsync('tc', args)).stdout;
  } catch (err) {
    throw new GcfsError(ErrorCode.Internal, `tc ${args.join(' ')} failed: ${stderrOf(err)}`, {
      cause: err,
      hint: 'needs root and the sch_tbf qdisc',
    });
  }
}

function ipError(args: string[], err: unknown): GcfsError {
  return new GcfsError(ErrorCode.Internal, `ip ${args.join(' ')} failed: ${stderrOf(err)}`, {
    cause: err,
    hint: 'needs root, iproute2 and veth support',
  });
}

function stderrOf(err: unknown): string {
  return String((err as { stderr?: string }).stderr ?? '').trim();
}
