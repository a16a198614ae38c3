// containerd.services.snapshots.v1.Snapshots over a Snapshotter: what containerd's
// proxy_plugins of type "snapshot" call. Errors carry the gRPC codes containerd maps to
// its errdefs (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT).

import { checkLength, ErrorCode, GcfsError, Limits } from '@gcfs/core';
import { snapshots as pb } from '@gcfs/proto';
import { bindGrpcUnixSocket, stopGrpc, toServiceError, unary } from '@gcfs/serving';
import { Server, type ServerWritableStream } from '@grpc/grpc-js';
import type { Mount, SnapshotInfo, SnapshotKind, Snapshotter } from './snapshotter.js';

// Infos per List message: containerd reads the stream to its end, small batches keep
// each message far below gRPC's size limit however many labels a snapshot has.
const LIST_BATCH = 100;

const KINDS: Record<SnapshotKind, pb.Kind> = {
  view: pb.Kind.VIEW,
  active: pb.Kind.ACTIVE,
  committed: pb.Kind.COMMITTED,
};

function timestamp(ms: number) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export function toWireInfo(info: SnapshotInfo): pb.Info {
  return {
    name: info.name,
    parent: info.parent,
    kind: KINDS[info.kind],
    createdAt: timestamp(info.createdAt),
    updatedAt: timestamp(info.updatedAt),
    labels: info.labels,
  };
}

function toWireMounts(mounts: Mount[]) {
  return { mounts: mounts.map((mount) => ({ ...mount, target: '' })) };
}

function requireKey(key: string): string {
  if (key === '') throw new GcfsError(ErrorCode.InvalidArgument, 'a snapshot key is required');
  return checkLength('snapshot key', key, Limits.snapshotKey);
}

/** containerd's own rule (labels.Validate): a label's key and value together within 4096. */
function checkLabels(labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    checkLength(`label ${key.slice(0, Limits.quoted)}`, key + value, Limits.label);
  }
  return labels;
}

function checkParent(parent: string): string {
  return checkLength('parent', parent, Limits.snapshotKey);
}

function list(snapshotter: Snapshotter) {
  return (call: ServerWritableStream<pb.ListSnapshotsRequest, pb.ListSnapshotsResponse>) => {
    try {
      const infos = snapshotter.list(call.request.filters).map(toWireInfo);
      for (let i = 0; i < infos.length; i += LIST_BATCH) call.write({ info: infos.slice(i, i + LIST_BATCH) });
      call.end();
    } catch (err) {
      // grpc-js sends the status of a streaming call from an 'error' event.
      call.emit('error', toServiceError(err));
    }
  };
}

/** The service implementation, to add to any grpc-js Server. */
export function snapshotsService(snapshotter: Snapshotter): pb.SnapshotsServer {
  return {
    prepare: unary(async (req: pb.PrepareSnapshotRequest) =>
      toWireMounts(
        await snapshotter.prepare(requireKey(req.key), checkParent(req.parent), checkLabels(req.labels)),
      ),
    ),
    view: unary(async (req: pb.ViewSnapshotRequest) =>
      toWireMounts(
        await snapshotter.view(requireKey(req.key), checkParent(req.parent), checkLabels(req.labels)),
      ),
    ),
    mounts: unary(async (req: pb.MountsRequest) =>
      toWireMounts(await snapshotter.mounts(requireKey(req.key))),
    ),
    commit: unary(async (req: pb.CommitSnapshotRequest) => {
      if (req.name === '') throw new GcfsError(ErrorCode.InvalidArgument, 'a snapshot name is required');
      checkLength('snapshot name', req.name, Limits.snapshotKey);
      await snapshotter.commit(req.name, requireKey(req.key), checkLabels(req.labels));
      return {};
    }),
    remove: unary(async (req: pb.RemoveSnapshotRequest) => {
      await snapshotter.remove(requireKey(req.key));
      return {};
    }),
    stat: unary((req: pb.StatSnapshotRequest) => ({
      info: toWireInfo(snapshotter.stat(requireKey(req.key))),
    })),
    update: unary(async (req: pb.UpdateSnapshotRequest) => {
      const info = req.info;
      if (!info) throw new GcfsError(ErrorCode.InvalidArgument, 'Update needs the snapshot info');
      const paths = (req.updateMask ?? []).map((path) => checkLength('update mask path', path, Limits.label));
      const updated = await snapshotter.update(requireKey(info.name), checkLabels(info.labels), paths);
      return { info: toWireInfo(updated) };
    }),
    list: list(snapshotter),
    usage: unary(async (req: pb.UsageRequest) => snapshotter.usage(requireKey(req.key))),
    cleanup: unary(async () => {
      await snapshotter.cleanup();
      return {};
    }),
  };
}

/** Serve the snapshots API on a root-only Unix socket; resolves with a stop function. */
export async function serveSnapshots(
  snapshotter: Snapshotter,
  socketPath: string,
): Promise<{ address: string; stop(): Promise<void> }> {
  const server = new Server();
  server.addService(pb.SnapshotsService, snapshotsService(snapshotter));
  const address = await bindGrpcUnixSocket(server, socketPath);
  return { address, stop: () => stopGrpc(server, 1000, socketPath) };
}
