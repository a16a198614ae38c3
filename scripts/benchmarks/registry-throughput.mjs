// Whole-blob read throughput on loopback: our registry client (streamed, digest verified)
// against curl, alternating runs in the same process lifetime so both see the same noise.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, MediaType } from '@gcfs/core';
import { RegistryClient } from '@gcfs/registry';
import { startRegistry } from '@gcfs/testkit';
import { MiB, median, resultsDir, spread, timed, writeResult } from './lib.mjs';

export async function run({ quick }) {
  const sizeMiB = quick ? 128 : 500;
  const runs = 5;
  const registry = await startRegistry();
  const blobFile = join(tmpdir(), `gcfs-bench-blob-${process.pid}`);
  try {
    const digester = new Digester();
    const out = createWriteStream(blobFile);
    for (let i = 0; i < sizeMiB; i++) {
      const chunk = randomBytes(MiB);
      digester.update(chunk);
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
    await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
    const desc = { mediaType: MediaType.OciLayer, digest: digester.digest(), size: sizeMiB * MiB };
    const client = new RegistryClient({ insecureHosts: [registry.host] });
    const ref = `${registry.host}/bench/blob:latest`;
    await client.pushBlob(ref, desc, () => createReadStream(blobFile));

    const url = `${registry.url}/v2/bench/blob/blobs/${desc.digest}`;
    const curlSeconds = [];
    const curlSha256Seconds = [];
    const clientSeconds = [];
    const clientCpuSeconds = [];
    for (let i = 0; i < runs; i++) {
      curlSeconds.push((await timed(() => curlToNull(url))).seconds);
      // The same work as the client: every byte hashed, by coreutils in a second process.
      curlSha256Seconds.push((await timed(() => curlToSha256sum(url, desc.digest))).seconds);
      // CPU time of this process while the client reads: less noisy than wall time on a shared machine.
      const cpu = process.cpuUsage();
      clientSeconds.push(
        (
          await timed(() =>
            pipeline(client.openBlobStream(ref, desc), new Writable({ write: (_c, _e, cb) => cb() })),
          )
        ).seconds,
      );
      const used = process.cpuUsage(cpu);
      clientCpuSeconds.push((used.user + used.system) / 1e6);
    }
    await client.close();
    // The floor verification sets: SHA-256 of as many bytes already in memory, on one thread.
    const sha256Seconds = [];
    const block = randomBytes(MiB);
    for (let i = 0; i < runs; i++) {
      sha256Seconds.push(
        (
          await timed(async () => {
            const hash = createHash('sha256');
            for (let m = 0; m < sizeMiB; m++) hash.update(block);
            hash.digest();
          })
        ).seconds,
      );
    }
    const mbps = (s) => desc.size / MiB / s;
    const result = {
      benchmark: 'registry-throughput',
      blob_bytes: desc.size,
      runs,
      curl_mib_per_s: mbps(median(curlSeconds)),
      client_mib_per_s: mbps(median(clientSeconds)),
      client_vs_curl: median(curlSeconds) / median(clientSeconds),
      curl_sha256sum_mib_per_s: mbps(median(curlSha256Seconds)),
      client_vs_curl_sha256sum: median(curlSha256Seconds) / median(clientSeconds),
      curl_seconds: curlSeconds,
      curl_sha256sum_seconds: curlSha256Seconds,
      client_seconds: clientSeconds,
      client_cpu_seconds: clientCpuSeconds,
      sha256_mib_per_s: mbps(median(sha256Seconds)),
      client_cpu_ms_per_mib: (1000 * median(clientCpuSeconds)) / (desc.size / MiB),
      noisy: spread(curlSeconds) > 0.5 || spread(clientSeconds) > 0.5 || spread(curlSha256Seconds) > 0.5,
      note:
        'client = RegistryClient.openBlobStream (sha256 verified while streaming); curl -o /dev/null (no verification); ' +
        'curl_sha256sum = curl | sha256sum, checked against the digest (the same work as the client, on two processes); ' +
        'client_cpu = CPU time of the benchmark process (main thread and any workers) while the client reads',
    };
    return result;
  } finally {
    await rm(blobFile, { force: true });
    await registry.stop();
  }
}

function curlToSha256sum(url, digest) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', 'curl -sSf "$1" | sha256sum', 'bash', url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`curl | sha256sum exited ${code}`));
      else if (`sha256:${out.split(' ')[0]}` !== digest) reject(new Error(`curl | sha256sum: digest ${out}`));
      else resolve();
    });
  });
}

function curlToNull(url) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sSf', '-o', '/dev/null', url], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}`))));
  });
}

export async function main(options) {
  const result = await run(options);
  const file = await writeResult('registry-throughput', result, resultsDir(options));
  console.log(
    `registry blob read, ${result.blob_bytes / MiB} MiB, median of ${result.runs}: ` +
      `client ${result.client_mib_per_s.toFixed(0)} MiB/s (${result.client_cpu_ms_per_mib.toFixed(2)} ms CPU/MiB), curl ${result.curl_mib_per_s.toFixed(0)} MiB/s, ` +
      `curl | sha256sum ${result.curl_sha256sum_mib_per_s.toFixed(0)} MiB/s (client ${result.client_vs_curl_sha256sum.toFixed(2)}x), ` +
      `sha256 alone ${result.sha256_mib_per_s.toFixed(0)} MiB/s, client/curl throughput ${result.client_vs_curl.toFixed(2)}${result.noisy ? ' (noisy)' : ''} -> ${file}`,
  );
}
