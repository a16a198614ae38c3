// The other half of prefetching: what containers read while starting. For a while after
// an image is registered (the snapshotter registers it just before its container starts),
// the FUSE reads of its layers are recorded (layer, path, offset, length, ms since
// registration) and sent to cfsd once with ReportImageReads, which builds the image's
// prefetch report from them. Tied to --enable_prefetching: a node that does not use
// reports does not make them either. Memory stays bounded: sequential reads of a file
// merge into one record, and an image keeps at most `maxReads` records.

import { describeError, Limits, type Logger, sleep } from '@gcfs/core';
import type { SessionLike } from './sessions.js';

/** One FUSE read of a layer file (the mount's `read` event has these fields). */
export interface LayerRead {
  layer: string;
  path: string;
  offset: number;
  bytes: number;
}

export interface ReadReportTiming {
  /** Reads are recorded this long after registration, then sent (default 30 s). */
  windowMs: number;
  /** Sent earlier when no read came for this long after the first one (default 10 s). */
  idleMs: number;
  /** Records kept per image (default: the most cfsd accepts in one report); later reads are counted, not kept. */
  maxReads: number;
}

export const DEFAULT_READ_REPORT_TIMING: ReadReportTiming = {
  windowMs: 30_000,
  idleMs: 10_000,
  maxReads: Limits.reportedReads,
};

export interface ReadReporterOptions {
  /** The image's current cfsd session, at send time. */
  sessionOf: (name: string) => Pick<SessionLike, 'reportReads'> | undefined;
  logger: Logger;
  timing?: Partial<ReadReportTiming>;
}

interface FileRead {
  layerDigest: string;
  path: string;
  offset: number;
  length: number;
  atMs: number;
}

interface Recording {
  layers: ReadonlySet<string>;
  startedMs: number;
  reads: FileRead[];
  /** The last record of each `layer\0path`, which a read continuing it extends. */
  last: Map<string, FileRead>;
  dropped: number;
  window: NodeJS.Timeout;
  idle?: NodeJS.Timeout;
}

export class ReadReporter {
  readonly #options: ReadReporterOptions;
  readonly #timing: ReadReportTiming;
  readonly #recordings = new Map<string, Recording>();

  constructor(options: ReadReporterOptions) {
    this.#options = options;
    this.#timing = { ...DEFAULT_READ_REPORT_TIMING, ...options.timing };
  }

  /** Start recording the reads of image `name`'s layers (again, if it was being recorded). */
  watch(name: string, layers: readonly string[]): void {
    this.#stop(name);
    const window = setTimeout(() => void this.#send(name), this.#timing.windowMs);
    // Pending reports never keep gcfsd alive.
    window.unref();
    this.#recordings.set(name, {
      layers: new Set(layers),
      startedMs: Date.now(),
      reads: [],
      last: new Map(),
      dropped: 0,
      window,
    });
  }

  /** A FUSE read: recorded for every image being watched that has the layer. */
  record(read: LayerRead): void {
    if (read.bytes <= 0) return;
    for (const [name, recording] of this.#recordings) {
      if (!recording.layers.has(read.layer)) continue;
      this.#add(recording, read);
      clearTimeout(recording.idle);
      recording.idle = setTimeout(() => void this.#send(name), this.#timing.idleMs);
      recording.idle.unref();
    }
  }

  /**
   * At shutdown: send what every recording has so far (a node that stops soon after a start
   * still teaches cfsd what it read), waiting at most `waitMs`.
   */
  async close(waitMs = 2_000): Promise<void> {
    const sends = [...this.#recordings.keys()].map((name) => this.#send(name));
    const done = new AbortController();
    await Promise.race([Promise.all(sends), sleep(waitMs, done.signal).catch(() => undefined)]);
    done.abort();
  }

  #add(recording: Recording, read: LayerRead): void {
    const key = `${read.layer}\0${read.path}`;
    const last = recording.last.get(key);
    if (last !== undefined && last.offset + last.length === read.offset) {
      last.length += read.bytes;
      return;
    }
    if (recording.reads.length >= this.#timing.maxReads) {
      recording.dropped++;
      return;
    }
    const record: FileRead = {
      layerDigest: read.layer,
      path: read.path,
      offset: read.offset,
      length: read.bytes,
      atMs: Date.now() - recording.startedMs,
    };
    recording.reads.push(record);
    recording.last.set(key, record);
  }

  #stop(name: string): Recording | undefined {
    const recording = this.#recordings.get(name);
    if (recording === undefined) return undefined;
    clearTimeout(recording.window);
    clearTimeout(recording.idle);
    this.#recordings.delete(name);
    return recording;
  }

  async #send(name: string): Promise<void> {
    const recording = this.#stop(name);
    if (recording === undefined) return;
    const { logger } = this.#options;
    const fields = { imageName: name, module: 'filesystem_lib' };
    if (recording.reads.length === 0) {
      logger.debug('No image reads to report', fields);
      return;
    }
    const session = this.#options.sessionOf(name);
    if (session === undefined) {
      logger.warn('Image reads not reported: no cfsd session', fields);
      return;
    }
    try {
      await session.reportReads(recording.reads);
      logger.info('Reported image reads', {
        ...fields,
        reads: recording.reads.length,
        dropped: recording.dropped,
      });
    } catch (err) {
      logger.warn('Reporting image reads failed', { ...fields, error: describeError(err) });
    }
  }
}
