// cfsd figures: indexing throughput of one big gzip layer against GNU tar extracting the
// same blob (the work a plain pull does), the background compaction that follows (blocks are
// indexed raw), and ReadBlocks latency on loopback.

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileStore, LayerCompactor, LayerIndexer, ServingActivity, startCfsd } from '@gcfs/cfsd';
import { buildImage, OciLayout, pushImage } from '@gcfs/image-builder';
import { containerfs as pb } from '@gcfs/proto';
import { RegistryClient } from '@gcfs/registry';
import { startRegistry } from '@gcfs/testkit';
import { credentials } from '@grpc/grpc-js';
import { MiB, median, resultsDir, spread, timed, writeResult } from './lib.mjs';

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function run({ quick }) {
  // A real tree of libraries and binaries: compresses like real image layers do.
  const source = quick ? '/usr/lib/x86_64-linux-gnu/perl-base' : '/usr/lib/x86_64-linux-gnu';
  const runs = quick ? 3 : 5;
  const work = await mkdtemp(join(tmpdir(), 'gcfs-bench-cfsd-'));
  const registry = await startRegistry();
  try {
    const built = await buildImage(
      { layers: [{ compression: 'gzip', fromDirectory: source }] },
      { layoutDir: join(work, 'layout') },
    );
    const layer = built.layers[0];
    const blob = (await OciLayout.open(built.layoutDir)).blobPath(layer.descriptor.digest);

    const tarSeconds = [];
    const indexSeconds = [];
    const compactSeconds = [];
    let compaction;
    for (let i = 0; i < runs; i++) {
      const out = join(work, `tar-${i}`);
      await mkdir(out);
      tarSeconds.push((await timed(async () => execFileSync('tar', ['-xzf', blob, '-C', out]))).seconds);
      await rm(out, { recursive: true, force: true });
      const store = await FileStore.open(join(work, `store-${i}`));
      const indexer = new LayerIndexer(store, { concurrency: 1 });
      const { seconds, value } = await timed(() =>
        indexer.ensure(layer.descriptor, () => createReadStream(blob)),
      );
      if (value.status !== 'ready') throw new Error(`indexing failed: ${value.reason}`);
      indexSeconds.push(seconds);
      // Off the critical path (a pull waits for the index, not for this), timed on its own.
      const compactor = new LayerCompactor(store, { forget() {} }, new ServingActivity(0));
      const compacted = once(compactor, 'compacted');
      compactor.enqueue(layer.descriptor.digest);
      compactor.start({ scan: false });
      [compaction] = await compacted;
      await compactor.stop();
      compactSeconds.push(compaction.seconds);
      await store.close();
      if (i < runs - 1) await rm(join(work, `store-${i}`), { recursive: true, force: true });
    }

    // ReadBlocks latency against a running cfsd holding the layer: first while it is raw (the
    // calls follow each other closely, so compaction waits and each block is compressed on
    // its way out), then once compacted.
    await pushImage(new RegistryClient({ insecureHosts: [registry.host] }), built, {
      registry: registry.host,
      repository: 'bench/cfsd',
      tag: 'v1',
    });
    const cfsd = await startCfsd({
      listen: '127.0.0.1:0',
      store: `file://${join(work, 'served')}`,
      registry: { insecureHosts: ['127.0.0.1'] },
    });
    const client = new pb.ContainerFSClient(cfsd.address, credentials.createInsecure());
    const call = (name, req) => promisify(client[name].bind(client))(req);
    const auth = await call(
      'authImage',
      pb.AuthImageRequest.fromPartial({ image: `${registry.host}/bench/cfsd:v1`, wait: true }),
    );
    const info = auth.layers[0];
    const readLatency = async () => {
      const latency = {};
      for (const count of [1, 2]) {
        const samples = [];
        for (let i = 0; i < (quick ? 200 : 1000); i++) {
          const firstBlock = Math.floor(Math.random() * Math.max(1, info.blockCount - count));
          const req = pb.ReadBlocksRequest.fromPartial({
            sessionToken: auth.sessionToken,
            layerDigest: info.digest,
            firstBlock,
            count,
          });
          samples.push((await timed(() => call('readBlocks', req))).seconds * 1000);
        }
        latency[count] = { p50_ms: percentile(samples, 50), p99_ms: percentile(samples, 99) };
      }
      return latency;
    };
    const compacted = once(cfsd.compactor, 'compacted');
    const whileRaw = await readLatency();
    // The calls stop: after its quiet period cfsd compacts the layer, and blocks go out as stored.
    await compacted;
    const latency = await readLatency();
    client.close();
    await cfsd.stop();

    const blobBytes = (await stat(blob)).size;
    return {
      benchmark: 'cfsd',
      source,
      layer_gzip_bytes: blobBytes,
      layer_tar_bytes: layer.uncompressedSize,
      block_size: info.blockSize,
      runs,
      tar_xzf_seconds: median(tarSeconds),
      index_seconds: median(indexSeconds),
      index_vs_tar: median(indexSeconds) / median(tarSeconds),
      index_mib_per_s: blobBytes / MiB / median(indexSeconds),
      compact_seconds: median(compactSeconds),
      compact_bytes_before: compaction.bytesBefore,
      compact_bytes_after: compaction.bytesAfter,
      compact_samples: compactSeconds,
      tar_samples: tarSeconds,
      index_samples: indexSeconds,
      noisy: spread(tarSeconds) > 0.5 || spread(indexSeconds) > 0.5,
      read_blocks_1: latency[1],
      read_blocks_2: latency[2],
      read_blocks_raw_1: whileRaw[1],
      read_blocks_raw_2: whileRaw[2],
    };
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

export async function main(options) {
  const r = await run(options);
  const file = await writeResult('cfsd', r, resultsDir(options));
  console.log(
    `cfsd indexing of ${(r.layer_gzip_bytes / MiB).toFixed(0)} MiB gzip (${(r.layer_tar_bytes / MiB).toFixed(0)} MiB tar), median of ${r.runs}: ` +
      `${r.index_seconds.toFixed(2)} s vs tar -xzf ${r.tar_xzf_seconds.toFixed(2)} s (ratio ${r.index_vs_tar.toFixed(2)})${r.noisy ? ' (noisy)' : ''}; ` +
      `compaction afterwards ${r.compact_seconds.toFixed(2)} s (${(r.compact_bytes_before / MiB).toFixed(0)} -> ${(r.compact_bytes_after / MiB).toFixed(0)} MiB); ` +
      `ReadBlocks p50/p99 while raw: 1 block ${r.read_blocks_raw_1.p50_ms.toFixed(2)}/${r.read_blocks_raw_1.p99_ms.toFixed(2)} ms, ` +
      `2 blocks ${r.read_blocks_raw_2.p50_ms.toFixed(2)}/${r.read_blocks_raw_2.p99_ms.toFixed(2)} ms; compacted: ` +
      `1 block ${r.read_blocks_1.p50_ms.toFixed(2)}/${r.read_blocks_1.p99_ms.toFixed(2)} ms, ` +
      `2 blocks ${r.read_blocks_2.p50_ms.toFixed(2)}/${r.read_blocks_2.p99_ms.toFixed(2)} ms -> ${file}`,
  );
}
