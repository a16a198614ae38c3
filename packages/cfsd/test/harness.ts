// Shared by cfsd's suites: a real token-auth registry, a real cfsd on loopback, and a
// promise-shaped raw gRPC client (the suites test the wire, not our client library).
import { promisify } from 'node:util';
import { crc32, zstdDecompressSync } from 'node:zlib';
import type { Digest } from '@gcfs/core';
import { type BuildResult, buildImage, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { containerfs as pb } from '@gcfs/proto';
import { RegistryClient } from '@gcfs/registry';
import { type AfterHook, type RunningRegistry, startRegistry, tempDirFor } from '@gcfs/testkit';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { type CfsdOptions, type RunningCfsd, startCfsd } from '../src/index.js';

export const ALICE = { username: 'alice', password: 'alice-secret-pw', identityToken: '' };
export const BOB = { username: 'bob', password: 'bob-secret-pw', identityToken: '' };

export async function privateRegistry(t: AfterHook): Promise<RunningRegistry> {
  const registry = await startRegistry({
    auth: 'token',
    users: [ALICE, BOB],
    acl: { 'private/*': { pull: ['alice'], push: ['alice'] }, 'public/*': { pull: ['*'], push: ['alice'] } },
  });
  t.after(() => registry.stop());
  return registry;
}

export async function pushBuilt(
  t: AfterHook,
  registry: RunningRegistry,
  repository: string,
  spec: ImageSpec,
): Promise<{ built: BuildResult; image: string }> {
  const layout = await tempDirFor(t, 'gcfs-layout-');
  const built = await buildImage(spec, { layoutDir: layout.path });
  const pusher = new RegistryClient({
    insecureHosts: ['127.0.0.1'],
    credentials: { [registry.host]: ALICE },
  });
  await pushImage(pusher, built, { registry: registry.host, repository, tag: 'v1' });
  await pusher.close();
  return { built, image: `${registry.host}/${repository}:v1` };
}

export async function runCfsd(t: AfterHook, options: Partial<CfsdOptions> & { storeDir?: string } = {}) {
  const storeDir = options.storeDir ?? (await tempDirFor(t, 'gcfs-cfsd-store-')).path;
  const cfsd = await startCfsd({
    listen: '127.0.0.1:0',
    store: `file://${storeDir}`,
    registry: { insecureHosts: ['127.0.0.1'] },
    metricsListen: '127.0.0.1:0',
    ...options,
  });
  t.after(() => cfsd.stop(100));
  return { cfsd, storeDir, client: connect(t, cfsd) };
}

export type RawClient = ReturnType<typeof connect>;
type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends Buffer ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

export function connect(t: AfterHook, cfsd: Pick<RunningCfsd, 'address'>) {
  const raw = new pb.ContainerFSClient(cfsd.address, credentials.createInsecure());
  t.after(() => raw.close());
  // Requests are written partially, as callers do, and completed with the message's defaults.
  const call =
    <Req, Res>(
      method: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown,
      type: { fromPartial(partial: never): Req },
    ) =>
    (req: DeepPartial<Req>) =>
      (promisify(method.bind(raw)) as unknown as (req: Req) => Promise<Res>)(type.fromPartial(req as never));
  return {
    raw,
    authImage: call<pb.AuthImageRequest, pb.AuthImageResponse>(raw.authImage, pb.AuthImageRequest),
    readBlocks: call<pb.ReadBlocksRequest, pb.ReadBlocksResponse>(raw.readBlocks, pb.ReadBlocksRequest),
    prefetchReport: call<pb.GetPrefetchImageReportRequest, pb.PrefetchImageReport>(
      raw.getPrefetchImageReport,
      pb.GetPrefetchImageReportRequest,
    ),
    reportReads: call<pb.ReportImageReadsRequest, pb.ReportImageReadsResponse>(
      raw.reportImageReads,
      pb.ReportImageReadsRequest,
    ),
    async layerIndex(sessionToken: string, layerDigest: string) {
      const chunks: pb.LayerIndexChunk[] = [];
      const stream = raw.getLayerIndex(pb.GetLayerIndexRequest.fromPartial({ sessionToken, layerDigest }));
      for await (const chunk of stream) chunks.push(chunk as pb.LayerIndexChunk);
      return { header: chunks[0]!.header!, entries: chunks.flatMap((c) => c.entries) };
    },
  };
}

/** Decode a block as a node would, checking its size and checksum. */
export function decodeBlock(block: pb.Block): Buffer {
  const data =
    block.encoding === pb.BlockEncoding.BLOCK_ENCODING_ZSTD
      ? zstdDecompressSync(block.data)
      : Buffer.from(block.data);
  if (data.length !== block.uncompressedSize || crc32(data) !== block.crc32) {
    throw new Error(`block ${block.index}: size or crc32 mismatch`);
  }
  return data;
}

/** Read `length` bytes at `offset` of a layer's content stream through ReadBlocks. */
export async function readContent(
  client: RawClient,
  token: string,
  layer: Digest | string,
  blockSize: number,
  offset: number,
  length: number,
): Promise<Buffer> {
  if (length === 0) return Buffer.alloc(0);
  const first = Math.floor(offset / blockSize);
  const last = Math.floor((offset + length - 1) / blockSize);
  const parts: Buffer[] = [];
  for (let next = first; next <= last; ) {
    const { blocks } = await client.readBlocks({
      sessionToken: token,
      layerDigest: layer,
      firstBlock: next,
      count: last - next + 1,
    });
    if (blocks.length === 0) throw new Error(`no blocks from ${next}`);
    for (const block of blocks) parts.push(decodeBlock(block));
    next += blocks.length;
  }
  const joined = Buffer.concat(parts);
  const start = offset - first * blockSize;
  return joined.subarray(start, start + length);
}
