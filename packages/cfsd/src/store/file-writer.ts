import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, syncDir, writeDurable } from '@gcfs/core';
import { INDEX, MANIFEST, makeManifest, TABLE } from './file-layout.js';
import { OrderedWriter } from './ordered-writer.js';

/** A layer directory built in tmp/ (blocks appended, then index, table, manifest), then installed. */
export class FileWriter extends OrderedWriter {
  readonly #dir: string;
  readonly #blocks: FileHandle;
  readonly #install: (temp: string) => Promise<void>;
  readonly #lengths: number[] = [];
  #size = 0;

  constructor(digest: Digest, dir: string, blocks: FileHandle, install: (temp: string) => Promise<void>) {
    super(digest);
    this.#dir = dir;
    this.#blocks = blocks;
    this.#install = install;
  }

  protected async writeBlock(data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#blocks.write(data, done, data.length - done, this.#size + done);
      done += bytesWritten;
    }
    this.#lengths.push(data.length);
    this.#size += data.length;
  }

  protected async publish(index: Buffer): Promise<void> {
    const table = Buffer.alloc(this.#lengths.length * 4);
    for (const [i, length] of this.#lengths.entries()) table.writeUInt32LE(length, i * 4);
    await this.#blocks.sync();
    await this.#blocks.close();
    await writeDurable(join(this.#dir, INDEX), index);
    await writeDurable(join(this.#dir, TABLE), table);
    const manifest = makeManifest(this.digest, index, table, this.#size);
    await writeDurable(join(this.#dir, MANIFEST), JSON.stringify(manifest));
    await syncDir(this.#dir);
    await this.#install(this.#dir);
  }

  protected async discard(): Promise<void> {
    await this.#blocks.close().catch(() => {});
    await rm(this.#dir, { recursive: true, force: true });
  }
}
