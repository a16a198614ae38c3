import { type Digest, ErrorCode, GcfsError } from '@gcfs/core';
import { MAX_BLOCK_BYTES } from './blocks.js';
import type { LayerWriter } from './layer-store.js';

type WriterState = 'open' | 'committing' | 'committed' | 'failed' | 'aborted';

/**
 * What every LayerWriter shares: appends applied in call order (a failed append fails every
 * later call), one commit, and an abort that waits for in-flight appends before discarding.
 * Subclasses only say how to store a block, publish the layer and discard it.
 */
export abstract class OrderedWriter implements LayerWriter {
  readonly digest: Digest;
  #tail: Promise<void> = Promise.resolve();
  #state: WriterState = 'open';
  #commit: Promise<void> = Promise.resolve();

  constructor(digest: Digest) {
    this.digest = digest;
  }

  protected abstract writeBlock(data: Buffer): Promise<void>;
  protected abstract publish(index: Buffer): Promise<void>;
  protected abstract discard(): Promise<void>;

  async appendBlock(data: Buffer): Promise<void> {
    this.#assertOpen('appendBlock');
    if (data.length > MAX_BLOCK_BYTES) {
      throw new GcfsError(
        ErrorCode.InvalidArgument,
        `block of ${data.length} bytes exceeds ${MAX_BLOCK_BYTES}`,
      );
    }
    // Chained synchronously (before any await), so call order is write order.
    this.#tail = this.#tail.then(() => this.writeBlock(data));
    return this.#tail;
  }

  async commit(index: Buffer): Promise<void> {
    this.#assertOpen('commit');
    this.#state = 'committing';
    this.#commit = this.#publish(index);
    return this.#commit;
  }

  async abort(): Promise<void> {
    // A commit under way decides first: once it published, there is nothing left to abort.
    if (this.#state === 'committing') await this.#commit.catch(() => {});
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    await this.#tail.catch(() => {});
    await this.discard();
  }

  async #publish(index: Buffer): Promise<void> {
    try {
      await this.#tail;
      await this.publish(index);
      this.#state = 'committed';
    } catch (err) {
      this.#state = 'failed';
      throw err;
    }
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new GcfsError(
        ErrorCode.InvalidArgument,
        `${operation} on a ${this.#state} writer of ${this.digest}`,
      );
    }
  }
}
