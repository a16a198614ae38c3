import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { sleep } from '@gcfs/core';
import { freePort, makeTempDir, portAccepts, startProcess, tempDirFor } from '../src/index.js';

const node = process.execPath;
const execFileAsync = promisify(execFile);

/** Whether `pid` is still running (a zombie counts as dead: it only waits to be reaped). */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Whether `pid` ends within a few seconds: SIGKILL is sent synchronously, delivered soon after. */
async function ends(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!(await running(pid))) return true;
    await sleep(50);
  }
  return false;
}

test('makeTempDir makes a fresh dir and cleanup removes it; tempDirFor cleans up after the test', async () => {
  const dir = await makeTempDir('gcfs-testkit-');
  await writeFile(join(dir.path, 'file'), 'x');
  await dir.cleanup();
  await dir.cleanup();
  await assert.rejects(stat(dir.path), { code: 'ENOENT' });

  let registered: (() => unknown) | undefined;
  const scoped = await tempDirFor({
    after: (fn) => {
      registered = fn;
    },
  });
  assert.ok((await stat(scoped.path)).isDirectory());
  await registered?.();
  await assert.rejects(stat(scoped.path), { code: 'ENOENT' });
});

test('a process is ready when its port accepts or its log line appears; output and log file are kept', async (t) => {
  const dir = await tempDirFor(t);
  const port = await freePort();
  const server = await startProcess({
    name: 'tcp server',
    command: node,
    args: ['-e', `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`],
    logFile: join(dir.path, 'log'),
    ready: { port },
  });
  t.after(() => server.stop());
  assert.equal(await portAccepts(port), true);

  const logger = await startProcess({
    name: 'logger',
    command: node,
    args: [
      '-e',
      'console.error("starting"); setTimeout(() => console.log("READY 42"), 100); setInterval(() => {}, 1e3)',
    ],
    ready: { logLine: /READY \d+/ },
  });
  t.after(() => logger.stop());
  assert.match(logger.output(), /starting[\s\S]*READY 42/);

  const exit = await server.stop();
  assert.equal(exit.signal, 'SIGTERM');
  assert.equal(await portAccepts(port), false);
  assert.match(await readFile(join(dir.path, 'log'), 'utf8'), /up/);
});

test('a process that exits before it is ready fails with its output', async () => {
  await assert.rejects(
    startProcess({
      name: 'doomed',
      command: 'sh',
      args: ['-c', 'echo "bad config"; exit 3'],
      ready: { port: await freePort() },
    }),
    (err: Error) => /doomed: exited before it was ready \(code 3\)[\s\S]*bad config/.test(err.message),
  );
});

test('stop() escalates to SIGKILL when SIGTERM is ignored', async () => {
  const stubborn = await startProcess({
    name: 'stubborn',
    command: node,
    args: ['-e', 'process.on("SIGTERM", () => {}); console.log("ok"); setInterval(() => {}, 1e3)'],
    ready: { logLine: /ok/ },
    stopTimeoutMs: 200,
  });
  assert.equal((await stubborn.stop()).signal, 'SIGKILL');
  assert.equal(await running(stubborn.pid!), false);
});

test('children die with the test process, whether it exits or is terminated', async () => {
  const processUrl = new URL('../src/process.js', import.meta.url).href;
  for (const ending of ['process.exit(0)', 'process.kill(process.pid, "SIGTERM")']) {
    const script = `
      const { startProcess } = await import(${JSON.stringify(processUrl)});
      const child = await startProcess({ name: 'sleeper', command: 'sleep', args: ['300'],
        ready: { check: async () => true } });
      console.log(child.pid);
      ${ending};`;
    const result = await execFileAsync(node, ['--input-type=module', '-e', script]).catch(
      (err: { stdout: string }) => err,
    );
    const pid = Number(result.stdout.trim());
    assert.ok(pid > 0, `no pid printed: ${JSON.stringify(result)}`);
    assert.ok(await ends(pid), `sleep ${pid} survived ${ending}`);
  }
});
