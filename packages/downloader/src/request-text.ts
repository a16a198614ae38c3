import type { DownloadOutcome, DownloadRequest } from './types.js';

// Go's protobuf text form, which GKE's gcfsd logs (`image_name:"..."  layer_id:"..."`): the
// same shape here, with the pull secret always shown as "(redacted)".

/** A download request for logs: every field but the pull secret's content. */
export function describeDownloadRequest(request: DownloadRequest): string {
  const fields: Field[] = [
    ['image_name', request.imageName],
    ['layer_id', request.layerId],
    ['layer_dir', request.layerDir],
    ['untar_dir', request.untarDir],
    ['media_type', request.mediaType || undefined],
    ['size', request.size || undefined],
    ['pull_secret', request.pullSecret ? '(redacted)' : undefined],
  ];
  return textFields(fields);
}

/** A download outcome for logs, fields at their zero value left out as protobuf text does. */
export function describeDownloadOutcome(outcome: DownloadOutcome): string {
  return textFields([
    ['succeeded', outcome.succeeded || undefined],
    ['has_mismatched_hash', outcome.hasMismatchedHash || undefined],
    ['error_reason', outcome.errorReason || undefined],
    ['error_code', outcome.errorCode || undefined],
    ['already_present', outcome.alreadyPresent || undefined],
  ]);
}

type Field = [name: string, value: string | number | boolean | undefined];

function textFields(fields: Field[]): string {
  return fields
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}:${typeof value === 'string' ? JSON.stringify(value) : value}`)
    .join('  ');
}
