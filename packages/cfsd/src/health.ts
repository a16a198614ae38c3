import { quote } from '@gcfs/core';
import { containerfs, health as pb } from '@gcfs/proto';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface HealthState {
  serving: boolean;
}

const KNOWN_SERVICES = new Set(['', `${containerfs.protobufPackage}.ContainerFS`]);
const { SERVING, NOT_SERVING } = pb.HealthCheckResponse_ServingStatus;

/** grpc.health.v1: SERVING until shutdown starts, for probes and load balancers. */
export function createHealthService(state: HealthState): pb.HealthServer {
  const current = () => (state.serving ? SERVING : NOT_SERVING);
  return {
    check(call, callback) {
      if (!KNOWN_SERVICES.has(call.request.service)) {
        callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service ${quote(call.request.service)}` });
        return;
      }
      callback(null, { status: current() });
    },
    watch(call: ServerWritableStream<pb.HealthCheckRequest, pb.HealthCheckResponse>) {
      let last = current();
      call.write({ status: last });
      const timer = setInterval(() => {
        if (current() !== last) {
          last = current();
          call.write({ status: last });
        }
        if (!state.serving) {
          clearInterval(timer);
          call.end();
        }
      }, 1000);
      call.on('cancelled', () => clearInterval(timer));
    },
  };
}
