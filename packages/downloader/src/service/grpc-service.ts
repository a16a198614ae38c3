import { checkCredentialLengths, checkLength, Limits, registerSecret } from '@gcfs/core';
import type { downloader as pb } from '@gcfs/proto';
import { unary } from '@gcfs/serving';
import type { DownloadOutcome, DownloadRequest } from '../types.js';
import { stateToWire } from '../wire.js';
import type { LayerDownloader } from './manager.js';

/** Called with every Download call answered, for logs and metrics. */
export type ResponseObserver = (request: DownloadRequest, outcome: DownloadOutcome) => void;

/** The gcfs.downloader.v1.Downloader service over a download manager. */
export function createDownloaderService(
  downloader: LayerDownloader,
  onResponse: ResponseObserver,
): pb.DownloaderServer {
  return {
    download: unary(async (req: pb.DownloadRequest): Promise<pb.DownloadResponse> => {
      const secret = req.pullSecret;
      checkDownloadRequest(req);
      // Before anything else can fail and describe the request.
      registerSecret(secret?.password);
      registerSecret(secret?.identityToken);
      const request: DownloadRequest = {
        imageName: req.imageName,
        layerId: req.layerId,
        layerDir: req.layerDir,
        untarDir: req.untarDir,
        mediaType: req.mediaType,
        size: req.size,
        ...(secret ? { pullSecret: secret } : {}),
      };
      const outcome = await downloader.download(request);
      onResponse(request, outcome);
      return outcome;
    }),
    getLayerState: unary(async (req: pb.GetLayerStateRequest): Promise<pb.LayerState> => {
      checkLength('layer_id', req.layerId, Limits.digest);
      const status = await downloader.state(req.layerId);
      return { ...status, state: stateToWire(status.state) };
    }),
    cancel: unary(
      async (req: pb.CancelRequest): Promise<pb.CancelResponse> => ({
        cancelled: downloader.cancel(checkLength('layer_id', req.layerId, Limits.digest)),
      }),
    ),
  };
}

/** Every text field bounded before it is parsed, logged or registered as a secret. */
function checkDownloadRequest(req: pb.DownloadRequest): void {
  checkLength('image_name', req.imageName, Limits.reference);
  checkLength('layer_id', req.layerId, Limits.digest);
  checkLength('layer_dir', req.layerDir, Limits.path);
  checkLength('untar_dir', req.untarDir, Limits.path);
  checkLength('media_type', req.mediaType, Limits.mediaType);
  checkCredentialLengths('pull_secret', req.pullSecret);
}
