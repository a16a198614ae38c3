import { createCipheriv, createHash } from 'node:crypto';
import type { SeededContent } from './spec.js';

const CHUNK = 256 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/**
 * Deterministic pseudo-random bytes: the AES-128-CTR keystream of a key derived from the
 * seed. Fast (hardware AES), incompressible like real binaries, and a prefix of a longer
 * stream with the same seed, so tests can regenerate expected content at any size.
 */
export async function* seededChunks(content: SeededContent): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(`gcfs-seed:${content.seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  for (let left = content.size; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? ZEROS : ZEROS.subarray(0, left));
  }
}

/** The whole seeded content in memory: for small sizes and test expectations. */
export async function seededBytes(content: SeededContent): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of seededChunks(content)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Hex sha256 of seeded content, computed without holding it. */
export async function seededSha256(content: SeededContent): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of seededChunks(content)) hash.update(chunk);
  return hash.digest('hex');
}
