const EMPTY = Buffer.alloc(0);

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') throw new TypeError('tar sources must yield bytes, not strings');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** A Readable, an async generator, or plain chunks in memory. */
export type ChunkSource = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

async function* toAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/**
 * Pull-based reads over an async iterable of chunks. Nothing is read from the source before
 * it is asked for, so a slow consumer holds back the producer (backpressure), and at most
 * one source chunk is held.
 */
export class ByteSource {
  readonly #iterator: AsyncIterator<Uint8Array | string>;
  #chunk: Buffer = EMPTY;
  #done = false;
  /** Bytes handed out (or skipped) so far. */
  position = 0;

  constructor(source: ChunkSource) {
    this.#iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : toAsync(source);
  }

  async #fill(): Promise<boolean> {
    while (this.#chunk.length === 0) {
      if (this.#done) return false;
      const result = await this.#iterator.next();
      if (result.done) {
        this.#done = true;
        return false;
      }
      this.#chunk = toBuffer(result.value);
    }
    return true;
  }

  /** Up to `max` bytes as a view of a source chunk (no copy); undefined at the end. */
  async next(max: number): Promise<Buffer | undefined> {
    if (!(await this.#fill())) return undefined;
    const out = this.#chunk.subarray(0, max);
    this.#chunk = this.#chunk.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** Exactly `n` bytes, fewer only at the end of the source. */
  async read(n: number): Promise<Buffer> {
    const first = await this.next(n);
    if (first === undefined || first.length === n) return first ?? EMPTY;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const part = await this.next(n - got);
      if (part === undefined) break;
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Skip `n` bytes; returns how many there were. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const part = await this.next(left);
      if (part === undefined) break;
      left -= part.length;
    }
    return n - left;
  }

  /** Read to the end, discarding (so that upstream digests and decompressors finish). */
  async drain(): Promise<void> {
    while ((await this.next(Number.POSITIVE_INFINITY)) !== undefined) {}
  }

  /** Stop the source early (a Readable is destroyed). */
  async close(): Promise<void> {
    if (!this.#done) await this.#iterator.return?.();
    this.#done = true;
  }
}
