import { fileURLToPath } from 'node:url';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { FileStore } from './file-store.js';
import type { LayerStore } from './layer-store.js';
import { MemoryStore } from './memory-store.js';

/** The memory store's bound when the URL does not give max_bytes. */
export const DEFAULT_MEMORY_STORE_BYTES = 1024 * 1024 * 1024;

const SUPPORTED = 'file:///ABSOLUTE/DIR or memory://?max_bytes=N';

/** Open the store a `--store` URL names: `file:///abs/dir` or `memory://?max_bytes=N`. */
export async function openStore(url: string): Promise<LayerStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw invalid(url, 'not a URL', err);
  }
  switch (parsed.protocol) {
    case 'file:': {
      if (parsed.host !== '' || parsed.search !== '') {
        throw invalid(url, 'a file store URL has three slashes and no query, e.g. file:///var/lib/cfsd');
      }
      return FileStore.open(fileURLToPath(parsed));
    }
    case 'memory:': {
      const raw = parsed.searchParams.get('max_bytes');
      const maxBytes = raw === null ? DEFAULT_MEMORY_STORE_BYTES : Number(raw);
      if (!/^[1-9][0-9]*$/.test(raw ?? '1') || !Number.isSafeInteger(maxBytes)) {
        throw invalid(url, `max_bytes must be a positive integer, got ${JSON.stringify(raw)}`);
      }
      return new MemoryStore({ maxBytes });
    }
    // registry:// will plug in here: the index stored as OCI artifacts attached to each image.
    default:
      throw invalid(url, `unsupported scheme ${JSON.stringify(parsed.protocol.replace(/:$/, ''))}`);
  }
}

function invalid(url: string, why: string, cause?: unknown): GcfsError {
  return new GcfsError(ErrorCode.InvalidFlag, `invalid store URL ${JSON.stringify(url)}: ${why}`, {
    cause,
    hint: `use ${SUPPORTED}`,
  });
}
