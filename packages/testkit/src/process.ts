import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { ErrorCode, GcfsError } from '@gcfs/core';

/** What tells us a spawned process is ready to serve. */
export type Readiness =
  | { port: number; host?: string }
  | { logLine: RegExp }
  | { check: () => Promise<boolean> };

export interface ProcessOptions {
  /** Short name used in errors, e.g. `docker-registry`. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Every byte of stdout and stderr is appended here as well as kept in memory. */
  logFile?: string;
  ready?: Readiness;
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before sending SIGKILL. */
  stopTimeoutMs?: number;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const OUTPUT_LIMIT = 64 * 1024;
const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

/** Make sure no child outlives the test process, whatever way it ends. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Only when nobody else handles the signal: a listener suppresses the default exit.
    if (process.listenerCount(signal) > 0) continue;
    const onSignal = () => {
      killAll();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** A long-running child process with its recent output kept for diagnostics. */
export class ManagedProcess {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #exit: Promise<ProcessExit>;
  readonly #log: WriteStream | undefined;
  readonly #stopTimeoutMs: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #exitInfo: ProcessExit | undefined;
  #outputListeners = new Set<() => void>();

  constructor(options: ProcessOptions) {
    installExitHooks();
    this.name = options.name;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 5000;
    this.#log =
      options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' });
    this.#child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.#child);
    this.#child.stdout?.on('data', (chunk: Buffer) => this.#record(chunk));
    this.#child.stderr?.on('data', (chunk: Buffer) => this.#record(chunk));
    this.#exit = new Promise((resolve) => {
      // 'close' (not 'exit') so the output is complete; 'error' covers a failed spawn.
      const done = (exit: ProcessExit) => {
        if (this.#exitInfo) return;
        this.#exitInfo = exit;
        live.delete(this.#child);
        this.#log?.end();
        for (const listener of this.#outputListeners) listener();
        resolve(exit);
      };
      this.#child.on('close', (code, signal) => done({ code, signal }));
      this.#child.on('error', (err) => {
        this.#record(Buffer.from(`spawn error: ${err.message}\n`));
        done({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Set once the process has exited (and its output is drained). */
  get exitInfo(): ProcessExit | undefined {
    return this.#exitInfo;
  }

  /** The last 64 KiB of stdout and stderr, interleaved as received. */
  output(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  waitForExit(): Promise<ProcessExit> {
    return this.#exit;
  }

  /** Resolve once `ready` holds; reject if the process exits first or the time is up. */
  async waitReady(ready: Readiness, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#exitInfo) throw this.failure(`exited before it was ready (${describeExit(this.#exitInfo)})`);
      if (await this.#isReady(ready)) return;
      await this.#nextOutputOrTick(50);
    }
    throw this.failure(`not ready after ${timeoutMs} ms`);
  }

  /** SIGTERM, then SIGKILL if it is still there after the stop timeout. Idempotent. */
  async stop(): Promise<ProcessExit> {
    if (!this.#exitInfo) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), this.#stopTimeoutMs);
      try {
        await this.#exit;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.#exit;
  }

  /** A GcfsError naming the process and carrying the tail of its output. */
  failure(message: string): GcfsError {
    const tail = this.output().slice(-4000);
    return new GcfsError(ErrorCode.Internal, `${this.name}: ${message}\n--- output ---\n${tail}`, {
      details: { pid: this.pid },
    });
  }

  #record(chunk: Buffer): void {
    this.#log?.write(chunk);
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > OUTPUT_LIMIT && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()!.length;
    }
    for (const listener of this.#outputListeners) listener();
  }

  async #isReady(ready: Readiness): Promise<boolean> {
    if ('port' in ready) return portAccepts(ready.port, ready.host ?? '127.0.0.1');
    if ('logLine' in ready) return ready.logLine.test(this.output());
    return ready.check();
  }

  #nextOutputOrTick(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#outputListeners.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#outputListeners.add(wake);
    });
  }
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** Spawn a process and wait until it is ready; on failure it is killed before the error is thrown. */
export async function startProcess(options: ProcessOptions): Promise<ManagedProcess> {
  const child = new ManagedProcess(options);
  if (options.ready) {
    try {
      await child.waitReady(options.ready, options.readyTimeoutMs);
    } catch (err) {
      await child.stop();
      throw err;
    }
  }
  return child;
}

/** Whether something accepts TCP connections on host:port right now. */
export function portAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A TCP port that was free on `host` a moment ago (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** The arguments as /proc has them: each followed by a NUL. */
  cmdline: string;
}

/** Every live process of the machine (those that end while we look are left out). */
export async function listProcesses(): Promise<ProcInfo[]> {
  const list: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // comm may hold spaces and parentheses: the fields after it follow the last ')'.
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8');
      list.push({ pid: Number(name), ppid, comm, cmdline });
    } catch {
      // the process went away while we looked
    }
  }
  return list;
}
