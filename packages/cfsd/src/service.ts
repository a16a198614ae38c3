import {
  checkImageRequest,
  checkLength,
  type Descriptor,
  type Digest,
  ErrorCode,
  GcfsError,
  Limits,
  quote,
  registerSecret,
} from '@gcfs/core';
import { containerfs as pb } from '@gcfs/proto';
import { toServiceError } from '@gcfs/serving';
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { BlockReader } from './block-reader.js';
import type { ImageRegistry, KnownImage } from './image-registry.js';
import type { LayerIndexer, LayerOutcome } from './layer-indexer.js';
import type { LayerIndexes } from './layer-indexes.js';
import type { PrefetchReports } from './prefetch.js';
import { isUnstreamableImage, notStreamable, type RegistryAccess } from './registry-access.js';
import type { ServingActivity } from './serving-activity.js';
import type { SessionKeys } from './session.js';
import type { LayerStore } from './store/layer-store.js';
import { tocEntryToProto } from './toc-proto.js';

export interface ServiceParts {
  access: RegistryAccess;
  sessions: SessionKeys;
  images: ImageRegistry;
  indexer: LayerIndexer;
  indexes: LayerIndexes;
  store: LayerStore;
  blocks: BlockReader;
  prefetch: PrefetchReports;
  /** Calls that mean a container is starting (compaction waits while they come). */
  activity?: ServingActivity;
  /** Entries per GetLayerIndex chunk. */
  entriesPerChunk?: number;
  /** Called with each finished call, for metrics. */
  observe?: (method: string, err: unknown, seconds: number, servedBytes?: number) => void;
}

/** The calls of a starting container (prefetch reports and read reports come after). */
const STARTING = new Set(['AuthImage', 'GetLayerIndex', 'ReadBlocks']);

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/** The ContainerFS gRPC service: AuthImage admits and indexes images, the rest serve content. */
export function createContainerFsService(parts: ServiceParts): pb.ContainerFSServer {
  const entriesPerChunk = parts.entriesPerChunk ?? 2000;

  function unary<Req, Res>(
    method: string,
    handle: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  ): Unary<Req, Res> {
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const done = starting(method);
      handle(call.request, call).then(
        (res) => {
          done?.();
          parts.observe?.(method, undefined, elapsed(started), servedBytes(res));
          callback(null, res);
        },
        (err: unknown) => {
          done?.();
          parts.observe?.(method, err, elapsed(started));
          callback(toServiceError(err));
        },
      );
    };
  }

  /** Count a call of a container start as activity; the result ends it. */
  function starting(method: string): (() => void) | undefined {
    return STARTING.has(method) ? parts.activity?.enter() : undefined;
  }

  /** The image a session token grants, and the layer it names if any (must belong to it). */
  function authorize(token: string, layerDigest?: string): { image: KnownImage; layer?: Descriptor } {
    checkLength('session_token', token, Limits.credential, { secret: true });
    if (layerDigest !== undefined) checkLength('layer_digest', layerDigest, Limits.digest);
    const claims = parts.sessions.verify(token);
    const image = parts.images.get(claims.manifestDigest);
    if (!image) {
      throw new GcfsError(
        ErrorCode.SessionInvalid,
        'session refers to an image this service no longer knows',
        {
          hint: 'call AuthImage again',
        },
      );
    }
    if (layerDigest === undefined) return { image };
    const layer = parts.images.layerOf(image, layerDigest);
    if (!layer) {
      throw new GcfsError(
        ErrorCode.PermissionDenied,
        `layer ${layerDigest} is not part of the session's image`,
      );
    }
    return { image, layer };
  }

  async function layerInfo(
    desc: Descriptor,
    outcome: LayerOutcome | { status: 'indexing' } | undefined,
  ): Promise<pb.Layer> {
    const layer: pb.Layer = {
      digest: desc.digest,
      mediaType: desc.mediaType,
      size: desc.size,
      status: pb.LayerStatus.LAYER_STATUS_INDEXING,
      failureReason: '',
      contentSize: 0,
      blockSize: 0,
      blockCount: 0,
    };
    if (outcome?.status === 'failed') {
      layer.status = pb.LayerStatus.LAYER_STATUS_FAILED;
      layer.failureReason = outcome.reason;
    } else if (outcome?.status === 'ready') {
      const { index } = await parts.indexes.get(desc.digest);
      layer.status = pb.LayerStatus.LAYER_STATUS_READY;
      layer.contentSize = index.contentSize;
      layer.blockSize = index.blockSize;
      layer.blockCount = index.blocks.length;
    }
    return layer;
  }

  async function authImage(
    req: pb.AuthImageRequest,
    call: ServerUnaryCall<pb.AuthImageRequest, pb.AuthImageResponse>,
  ) {
    // Bounded before anything parses them (or redacts them into an error).
    checkImageRequest(req.image, 'credentials', req.credentials);
    checkLength('platform', req.platform, Limits.platform);
    const creds = req.credentials;
    registerSecret(creds?.password);
    registerSecret(creds?.identityToken);
    let access: Awaited<ReturnType<RegistryAccess['resolve']>>;
    try {
      access = await parts.access.resolve(req.image, creds ?? {}, req.platform);
    } catch (err) {
      throw isUnstreamableImage(err)
        ? notStreamable(`image ${quote(req.image)} cannot be streamed: ${(err as Error).message}`)
        : err;
    }
    const { resolved, client } = access;
    const image: KnownImage = {
      reference: String(resolved.reference),
      manifestDigest: resolved.manifestDigest,
      layers: resolved.manifest.layers,
    };
    parts.images.admit(image);
    const work = image.layers.map((layer) =>
      parts.indexer.ensure(layer, () => client.openBlobStream(resolved.reference, layer)),
    );
    // The client carries the caller's credentials: keep it until its layers are indexed.
    void Promise.allSettled(work).then(() => client.close());
    if (req.wait) await waitUntil(Promise.allSettled(work), call.getDeadline());

    const layers = await Promise.all(
      image.layers.map(async (layer) => layerInfo(layer, await parts.indexer.peek(layer.digest))),
    );
    const failed = layers.find((layer) => layer.status === pb.LayerStatus.LAYER_STATUS_FAILED);
    const status = failed
      ? pb.ImageStatus.IMAGE_STATUS_NOT_STREAMABLE
      : layers.every((layer) => layer.status === pb.LayerStatus.LAYER_STATUS_READY)
        ? pb.ImageStatus.IMAGE_STATUS_READY
        : pb.ImageStatus.IMAGE_STATUS_INDEXING;
    const { token, claims } = parts.sessions.issue(image.manifestDigest);
    return {
      sessionToken: token,
      expiresAtUnixMs: claims.expiresAt,
      image: image.reference,
      manifestDigest: image.manifestDigest,
      status,
      notStreamableReason: failed ? `layer ${failed.digest}: ${failed.failureReason}` : '',
      layers,
    } satisfies pb.AuthImageResponse;
  }

  async function readBlocks(req: pb.ReadBlocksRequest) {
    const { layer } = authorize(req.sessionToken, req.layerDigest);
    if (req.count === 0) throw new GcfsError(ErrorCode.InvalidArgument, 'count must be at least 1');
    return {
      blocks: await parts.blocks.read(layer!.digest, req.firstBlock, req.count),
    } satisfies pb.ReadBlocksResponse;
  }

  async function getLayerIndex(call: ServerWritableStream<pb.GetLayerIndexRequest, pb.LayerIndexChunk>) {
    const started = process.hrtime.bigint();
    const done = starting('GetLayerIndex');
    try {
      const { layer } = authorize(call.request.sessionToken, call.request.layerDigest);
      await untilIndexed(layer!.digest, call.request.wait, call.getDeadline());
      const { index } = await parts.indexes.get(layer!.digest);
      call.write({
        header: {
          layerDigest: layer!.digest,
          contentSize: index.contentSize,
          blockSize: index.blockSize,
          blockCount: index.blocks.length,
          entryCount: index.entries.length,
        },
        entries: [],
      });
      for (let i = 0; i < index.entries.length; i += entriesPerChunk) {
        const chunk = {
          header: undefined,
          entries: index.entries.slice(i, i + entriesPerChunk).map(tocEntryToProto),
        };
        if (!call.write(chunk)) await new Promise((resolve) => call.once('drain', resolve));
        if (call.cancelled) return;
      }
      call.end();
      parts.observe?.('GetLayerIndex', undefined, elapsed(started));
    } catch (err) {
      parts.observe?.('GetLayerIndex', err, elapsed(started));
      call.emit('error', toServiceError(err));
    } finally {
      done?.();
    }
  }

  /**
   * Answer for a layer that is not indexed: NOT_STREAMABLE when it cannot be, and with `wait`
   * the end of its indexing under way, until shortly before `deadline` (still indexing then is
   * ERR_LAYER_INDEXING, which the caller answers by asking again).
   */
  async function untilIndexed(digest: Digest, wait: boolean, deadline: Date | number): Promise<void> {
    const indexing = wait ? parts.indexer.inProgress(digest) : undefined;
    if (indexing !== undefined) {
      const outcome = await waitUntil(indexing, deadline);
      if (outcome === undefined) {
        throw new GcfsError(ErrorCode.LayerIndexing, `layer ${digest} is still being indexed`, {
          hint: 'ask again with wait',
        });
      }
      if (outcome.status === 'failed' && !outcome.permanent) {
        throw new GcfsError(ErrorCode.NotFound, `indexing layer ${digest} failed: ${outcome.reason}`, {
          hint: 'call AuthImage again to index it again',
        });
      }
    }
    // Permanent failures are recorded in the store before the indexing settles.
    const failure = await parts.store.failure(digest);
    if (failure !== undefined) {
      throw new GcfsError(ErrorCode.NotStreamable, `layer ${digest} cannot be streamed: ${failure.reason}`);
    }
  }

  async function getPrefetchImageReport(req: pb.GetPrefetchImageReportRequest) {
    const { image } = authorize(req.sessionToken);
    const report = await parts.prefetch.get(image.manifestDigest);
    if (!report) {
      throw new GcfsError(ErrorCode.NotStreamable, `no prefetch report for ${image.reference} yet`, {
        hint: 'nodes report reads with ReportImageReads; the report exists after the first one',
      });
    }
    return {
      manifestDigest: report.manifestDigest,
      ranges: report.ranges,
      reports: report.reports,
    } satisfies pb.PrefetchImageReport;
  }

  async function reportImageReads(req: pb.ReportImageReadsRequest) {
    const { image } = authorize(req.sessionToken);
    if (req.reads.length > Limits.reportedReads) {
      throw new GcfsError(
        ErrorCode.InvalidArgument,
        `${req.reads.length} reads in one report, more than ${Limits.reportedReads}`,
      );
    }
    const indexes = new Map<Digest, Awaited<ReturnType<LayerIndexes['get']>>>();
    for (const read of req.reads) {
      checkLength('reads.layer_digest', read.layerDigest, Limits.digest);
      checkLength('reads.path', read.path, Limits.path);
      const layer = parts.images.layerOf(image, read.layerDigest);
      if (!layer)
        throw new GcfsError(ErrorCode.PermissionDenied, `layer ${read.layerDigest} is not part of the image`);
      if (!indexes.has(layer.digest)) indexes.set(layer.digest, await parts.indexes.get(layer.digest));
    }
    await parts.prefetch.record(
      image.manifestDigest,
      req.reads.map((r) => ({
        layerDigest: r.layerDigest as Digest,
        path: r.path,
        offset: r.offset,
        length: r.length,
        atMs: r.atMs,
      })),
      (digest) => indexes.get(digest)!,
    );
    return {} satisfies pb.ReportImageReadsResponse;
  }

  return {
    authImage: unary('AuthImage', authImage),
    readBlocks: unary('ReadBlocks', readBlocks),
    getLayerIndex: (call) => void getLayerIndex(call),
    getPrefetchImageReport: unary('GetPrefetchImageReport', getPrefetchImageReport),
    reportImageReads: unary('ReportImageReads', reportImageReads),
  };
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function servedBytes(res: unknown): number | undefined {
  const blocks = (res as pb.ReadBlocksResponse | undefined)?.blocks;
  return Array.isArray(blocks) ? blocks.reduce((sum, b) => sum + b.data.length, 0) : undefined;
}

/** What `work` settles with, or undefined when shortly before the call's deadline it has not. */
async function waitUntil<T>(work: Promise<T>, deadline: Date | number): Promise<T | undefined> {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return work;
  const budget = at - Date.now() - 250;
  if (budget <= 0) return undefined;
  const timeout = AbortSignal.timeout(budget);
  return Promise.race([
    work,
    new Promise<undefined>((resolve) => timeout.addEventListener('abort', () => resolve(undefined))),
  ]);
}
