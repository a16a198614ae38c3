// A layer's life on a node, as one state machine. ServedImages (served-images.ts) owns it
// and the registrar drives it; this file holds the states, the legal transitions and the
// one log line per transition, so a layer's history reads straight from the log
// (`msg="Layer state" layer=… from=… to=…`).
//
//   attached ──index loaded──▶ streamed ──download──▶ downloading ──done──▶ local
//      │                                                 ▲   │
//      └───────────download (restored image)─────────────┘   └──gave up──▶ failed
//                                                        ▲                     │
//                                                        └──registered again───┘
//   attached, streamed, failed ──found in the cache dir──▶ local
//   any state ──GC: no image in use needs it──▶ (removed)
//
// - attached: an image being registered or in the tree names it; nothing serves it yet.
// - streamed: layers/<digest> is served from cfsd's table of contents.
// - downloading: the downloader is writing it into the cache dir. A first pull downloads
//   the layers cfsd has not indexed at once; when the index comes first, the download
//   yields (back to streamed) and starts again after a pause in on-demand reads.
// - local: served from the cache dir; final until GC removes it.
// - failed: the downloader gave up; the layer stays streamed (when its index is loaded) and
//   is tried again when an image naming it is registered again, or gcfsd restarts.
// Loading the index is a state change only from attached: a layer downloading (or failed)
// before cfsd answered is downloading (failed) still, and becomes servable as well.
// Beside the state, each layer's index has its own progress (unknown, indexing, loaded,
// failed): a first pull commits the snapshots before cfsd has indexed the layers, downloads
// those at once, and serves each from whichever comes first, its index or its local copy.
// A registration claims its layers while it runs, so GC leaves them alone until it either
// puts them in the tree or fails; then an unclaimed layer no image in use names is GC's.

import { ErrorCode, GcfsError, type LogFields, type Logger } from '@gcfs/core';

export const LAYER_STATES = ['attached', 'streamed', 'downloading', 'local', 'failed'] as const;
export type LayerState = (typeof LAYER_STATES)[number];

/** The legal transitions; any other one is a bug and throws. Removal (GC) is legal from all. */
export const LAYER_TRANSITIONS: Readonly<Record<LayerState, readonly LayerState[]>> = {
  attached: ['streamed', 'downloading', 'local'],
  streamed: ['downloading', 'local'],
  downloading: ['local', 'failed', 'streamed'],
  local: [],
  failed: ['downloading', 'local'],
};

/** How loud each arrival is: the routine steps at debug, what an operator acts on above. */
const LEVEL: Readonly<Record<LayerState | 'removed', 'debug' | 'info' | 'error'>> = {
  attached: 'debug',
  streamed: 'debug',
  downloading: 'debug',
  local: 'info',
  failed: 'error',
  removed: 'info',
};

/**
 * How far the layer's index is: not known yet (cfsd has not answered), being indexed by cfsd,
 * loaded (layers/<digest> is in the tree), or failed (cfsd cannot index it: local copy only).
 */
export type IndexProgress = 'unknown' | 'indexing' | 'loaded' | 'failed';

/**
 * Whether a mount can use the layer: now, once something under way ends (cfsd indexing it,
 * or its download), not yet and nothing known to be under way, or never (both failed).
 */
export type Availability = 'servable' | 'pending' | 'unknown' | { failed: string };

/** How long a `pending` layer may take to become servable: at worst as long as a full pull. */
export const PENDING_WAIT_MS = 600_000;

interface Entry {
  state: LayerState;
  index: IndexProgress;
  /** Why cfsd cannot index it. */
  indexFailure?: string;
  /** Why its last download was given up, and the stable code of that failure. */
  downloadFailure?: string;
  downloadFailureCode?: string;
  /** Registrations under way that name the layer. */
  claims: number;
}

/** One layer as the admin API shows it: its state, its index, and why either failed. */
export interface LayerInfo {
  digest: string;
  state: LayerState;
  index: IndexProgress;
  /** failed: why its download was given up, and the stable code of that failure. */
  downloadFailure?: { reason: string; code: string };
  /** index failed: why cfsd cannot index it. */
  indexFailure?: string;
}

export interface LayerStatesOptions {
  logger: Logger;
  /** Every transition, for metrics (`to` undefined: removed). */
  onTransition?: (from: LayerState | undefined, to: LayerState | undefined) => void;
}

export class LayerStates {
  readonly #o: LayerStatesOptions;
  readonly #layers = new Map<string, Entry>();

  constructor(options: LayerStatesOptions) {
    this.#o = options;
  }

  state(digest: string): LayerState | undefined {
    return this.#layers.get(digest)?.state;
  }

  /** Every layer the node knows, in any state. */
  digests(): string[] {
    return [...this.#layers.keys()];
  }

  /** Local, or streamed with its index loaded. */
  servable(digest: string): boolean {
    const entry = this.#layers.get(digest);
    return entry !== undefined && (entry.state === 'local' || entry.index === 'loaded');
  }

  indexProgress(digest: string): IndexProgress | undefined {
    return this.#layers.get(digest)?.index;
  }

  /** Why cfsd cannot index the layer, when it cannot. */
  indexFailure(digest: string): string | undefined {
    return this.#layers.get(digest)?.indexFailure;
  }

  availability(digest: string): Availability {
    const entry = this.#layers.get(digest);
    if (entry === undefined) return 'unknown';
    if (entry.state === 'local' || entry.index === 'loaded') return 'servable';
    if (entry.index === 'failed' && entry.state === 'failed') {
      return {
        failed: `cfsd cannot index it (${entry.indexFailure}) and its download failed (${entry.downloadFailure})`,
      };
    }
    if (entry.index === 'indexing' || entry.state === 'downloading') return 'pending';
    return 'unknown';
  }

  /** Every layer the node knows, for the admin API. */
  list(): LayerInfo[] {
    return [...this.#layers].map(([digest, entry]) => ({
      digest,
      state: entry.state,
      index: entry.index,
      ...(entry.state === 'failed' && {
        downloadFailure: {
          reason: entry.downloadFailure ?? 'unknown',
          code: entry.downloadFailureCode ?? '',
        },
      }),
      ...(entry.index === 'failed' && { indexFailure: entry.indexFailure ?? 'unknown' }),
    }));
  }

  /** Layers per state (the gauge). */
  counts(): Record<LayerState, number> {
    const counts = Object.fromEntries(LAYER_STATES.map((state) => [state, 0])) as Record<LayerState, number>;
    for (const { state } of this.#layers.values()) counts[state]++;
    return counts;
  }

  /** Known from now on (attached unless known already); `claim` holds it off GC. */
  attach(digest: string, fields: LogFields, claim = false): void {
    let entry = this.#layers.get(digest);
    if (entry === undefined) {
      entry = { state: 'attached', index: 'unknown', claims: 0 };
      this.#layers.set(digest, entry);
      this.#log(digest, undefined, 'attached', fields);
    }
    if (claim) entry.claims++;
  }

  /** The registration that claimed the layer is over (in the tree now, or failed). */
  release(digest: string): void {
    const entry = this.#layers.get(digest);
    if (entry !== undefined && entry.claims > 0) entry.claims--;
  }

  claimed(digest: string): boolean {
    return (this.#layers.get(digest)?.claims ?? 0) > 0;
  }

  /**
   * Move the layer to `next` when it is in one of `expected` (grpc-js's transitionToState);
   * false, and nothing changes, when it is not (or unknown). Throws when the table forbids
   * `state → next`: the caller's `expected` is wrong.
   */
  transition(
    digest: string,
    expected: readonly LayerState[],
    next: LayerState,
    fields: LogFields = {},
  ): boolean {
    const entry = this.#layers.get(digest);
    if (entry === undefined || !expected.includes(entry.state)) return false;
    if (!LAYER_TRANSITIONS[entry.state].includes(next)) {
      throw new GcfsError(
        ErrorCode.Internal,
        `illegal layer transition ${entry.state} → ${next} of ${digest}`,
      );
    }
    const from = entry.state;
    entry.state = next;
    if (next === 'failed') {
      entry.downloadFailure = String(fields.reason ?? 'unknown');
      entry.downloadFailureCode = String(fields.error_code ?? '');
    }
    this.#log(digest, from, next, fields);
    return true;
  }

  /** layers/<digest> is in the tree; false when the layer is unknown (GC removed it meanwhile). */
  markIndexed(digest: string): boolean {
    const entry = this.#layers.get(digest);
    if (entry === undefined) return false;
    entry.index = 'loaded';
    this.transition(digest, ['attached'], 'streamed');
    return true;
  }

  /** cfsd is indexing the layer (its index is on its way), or cannot (`reason`). */
  markIndexProgress(digest: string, progress: 'indexing' | { failed: string }): void {
    const entry = this.#layers.get(digest);
    if (entry === undefined || entry.index === 'loaded') return;
    if (progress === 'indexing') {
      entry.index = 'indexing';
      return;
    }
    entry.index = 'failed';
    entry.indexFailure = progress.failed;
    this.#o.logger.warn('Layer cannot be streamed: it is served once downloaded', {
      layer: digest,
      reason: progress.failed,
    });
  }

  /** GC took it out of the tree. */
  remove(digest: string, fields: LogFields = {}): void {
    const entry = this.#layers.get(digest);
    if (entry === undefined) return;
    this.#layers.delete(digest);
    this.#log(digest, entry.state, undefined, fields);
  }

  #log(digest: string, from: LayerState | undefined, to: LayerState | undefined, fields: LogFields): void {
    this.#o.logger[LEVEL[to ?? 'removed']]('Layer state', {
      layer: digest,
      from: from ?? 'none',
      to: to ?? 'removed',
      ...fields,
    });
    this.#o.onTransition?.(from, to);
  }
}
