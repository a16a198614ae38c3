import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';
import type { BlockRecord } from './layer-store.js';

/** The largest block a store accepts: block lengths are stored as uint32. */
export const MAX_BLOCK_BYTES = 0xffff_ffff;

/** Validate a readBlocks range and clamp it to a layer of `total` blocks: [start, end). */
export function clampRange(first: number, count: number, total: number): [number, number] {
  if (!Number.isSafeInteger(first) || first < 0 || !Number.isSafeInteger(count) || count < 0) {
    throw new GcfsError(ErrorCode.InvalidArgument, `invalid block range: first ${first}, count ${count}`, {
      hint: 'first and count are non-negative integers',
    });
  }
  const start = Math.min(first, total);
  return [start, Math.min(total, start + count)];
}

export function layerNotFound(digest: Digest): GcfsError {
  return new GcfsError(ErrorCode.NotFound, `layer ${digest} is not in the store`, { details: { digest } });
}

/** Offsets follow from the lengths: blocks are stored back to back. */
export function recordsFromLengths(lengths: Iterable<number>): BlockRecord[] {
  const records: BlockRecord[] = [];
  let offset = 0;
  for (const length of lengths) {
    records.push({ offset, length });
    offset += length;
  }
  return records;
}

export function totalLength(records: readonly BlockRecord[]): number {
  const last = records.at(-1);
  return last === undefined ? 0 : last.offset + last.length;
}
