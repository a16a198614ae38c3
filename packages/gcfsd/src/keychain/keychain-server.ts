// The keychain socket (--enable_pull_secret_keychain, --keychain_uds_path): one root-only gRPC
// server with gcfs.gcfsd.v1.Keychain (UpdateCreds, for any agent that holds credentials) and
// CRI's runtime.v1.ImageService proxied to containerd (--containerd_address), whose PullImage
// auth is recorded the same way. It serves as soon as gcfsd does, whether containerd is up yet
// or not: calls made meanwhile fail with UNAVAILABLE, as they would on containerd's socket.

import { checkImageRequest, type Logger } from '@gcfs/core';
import { type cri, gcfsdKeychain as pb } from '@gcfs/proto';
import type { Credential } from '@gcfs/registry';
import { bindGrpcUnixSocket, stopGrpc, unary } from '@gcfs/serving';
import { Server } from '@grpc/grpc-js';
import { credentialFromCriAuth } from './cri-auth.js';
import { CRI_MAX_MESSAGE_BYTES, ImageServiceProxy } from './image-service-proxy.js';
import type { RecordedCredentials } from './recorded-credentials.js';

export interface KeychainServerOptions {
  socketPath: string;
  containerdAddress: string;
  credentials: RecordedCredentials;
  logger: Logger;
  /** Each credential recorded, by where it came from (for metrics). */
  onRecorded?: (source: 'pull_image' | 'update_creds') => void;
}

export interface RunningKeychain {
  stop(): Promise<void>;
}

function isEmpty(credential: Credential): boolean {
  return !credential.username && !credential.password && !credential.identityToken;
}

export async function serveKeychain(o: KeychainServerOptions): Promise<RunningKeychain> {
  const logger = o.logger.child({ module: 'keychain' });
  /** GKE's log line; the image as the caller wrote it, never the credential. */
  const received = (image: string) => logger.info(`Received UpdateCreds request for image ${image}`);

  // CRI's limit, not the smaller one of our node-local APIs: the proxy must take what
  // containerd takes. UpdateCreds bounds its own fields.
  const server = new Server({ 'grpc.max_receive_message_length': CRI_MAX_MESSAGE_BYTES });
  const keychain: pb.KeychainServer = {
    updateCreds: unary(async (req: pb.UpdateCredsRequest) => {
      checkImageRequest(req.image, 'credentials', req.credentials);
      received(req.image);
      const credential: Credential = {
        username: req.credentials?.username,
        password: req.credentials?.password,
        identityToken: req.credentials?.identityToken,
      };
      if (isEmpty(credential)) {
        await o.credentials.forget(req.image);
      } else {
        await o.credentials.record(req.image, credential);
        o.onRecorded?.('update_creds');
      }
      return {};
    }),
  };
  server.addService(pb.KeychainService, keychain);

  const proxy = new ImageServiceProxy({
    containerdAddress: o.containerdAddress,
    logger,
    onPull: async (request: cri.PullImageRequest) => {
      const image = request.image?.image ?? '';
      const credential = credentialFromCriAuth(image, request.auth);
      if (credential === undefined) return undefined;
      received(image);
      const undo = await o.credentials.record(image, credential);
      o.onRecorded?.('pull_image');
      return undo;
    },
  });
  proxy.addTo(server);
  try {
    await bindGrpcUnixSocket(server, o.socketPath);
  } catch (err) {
    proxy.close();
    throw err;
  }
  logger.info(`Starting keychain server on ${o.socketPath}`, { containerd: o.containerdAddress });
  return {
    async stop() {
      await stopGrpc(server, 1000, o.socketPath);
      proxy.close();
    },
  };
}
