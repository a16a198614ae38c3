import { ErrorCode, GcfsError } from '@gcfs/core';
import type { TarMember } from './entries.js';
import type { LongNameFormat } from './spec.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from './tar-header.js';

/** The bytes of a tar archive of `members`, produced lazily so content is never held whole. */
export async function* tarBytes(
  members: AsyncIterable<TarMember>,
  longNames: LongNameFormat = 'pax',
): AsyncGenerator<Buffer> {
  for await (const { header, body } of members) {
    yield encodeHeader(header, longNames);
    if (!body) continue;
    let written = 0;
    for await (const chunk of body()) {
      written += chunk.byteLength;
      if (written > header.size) break;
      yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    if (written !== header.size) {
      // A source file that changed while we read it would corrupt every later member.
      throw new GcfsError(
        ErrorCode.SizeMismatch,
        `tar entry ${JSON.stringify(header.name)}: content has ${written > header.size ? 'more' : 'fewer'} bytes than the ${header.size} announced`,
      );
    }
    yield padding(header.size);
  }
  yield END_OF_ARCHIVE;
}
