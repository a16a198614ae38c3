// Garbage collection every --gc_period: images no longer in use leave the tree, and layers
// no image in use needs leave the tree and the layer cache dir. The registrar decides what
// is unused and applies it under the tree's lock (collect()), so an image being registered is
// never half-collected; GC brings the cache dir's listing, removes dirs, logs and counts.

import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { formatDuration } from '@gcfs/cli';
import { describeError, type Logger } from '@gcfs/core';
import { cachedLayerDir, listCachedLayers } from './layer-dirs.js';
import type { Unused } from './served-images.js';

/** What GC asks of the registrar. */
export interface GcSubject {
  /**
   * Take what no image in use needs out of the tree (`cached`: the layers in the cache dir,
   * considered too), then call `removeDirs` while nothing can start using them again.
   */
  collect(cached: readonly string[], removeDirs: (unused: Unused) => Promise<void>): Promise<Unused>;
}

export interface GcResult {
  images: string[];
  layers: string[];
  /** Wall-clock time of the pass. */
  ms: number;
}

export interface GarbageCollectorOptions {
  subject: GcSubject;
  cacheDir: string;
  logger: Logger;
  /** --gc_period in ms; 0 disables the periodic pass (run() still works). */
  periodMs: number;
  onRun?: (result: GcResult) => void;
}

/** `map[a:true b:true]`, as the Go daemon prints its sets. */
function goSet(keys: readonly string[]): string {
  return `map[${keys.map((key) => `${key}:true`).join(' ')}]`;
}

/** A short duration the way Go prints one: `121.069µs`, `3.5ms`, `1.2s`. */
export function goShortDuration(ms: number): string {
  const trim = (value: number) => String(Number(value.toFixed(3)));
  if (ms < 0.001) return `${Math.round(ms * 1e6)}ns`;
  if (ms < 1) return `${trim(ms * 1000)}µs`;
  if (ms < 1000) return `${trim(ms)}ms`;
  return formatDuration(Math.round(ms));
}

export class GarbageCollector {
  readonly #o: GarbageCollectorOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<GcResult> | undefined;

  constructor(options: GarbageCollectorOptions) {
    this.#o = options;
  }

  /** Start the periodic pass (logs as GKE's gcfsd does). */
  start(): void {
    const { periodMs, logger } = this.#o;
    if (periodMs <= 0) {
      logger.info('GC disabled (gc_period=0s)');
      return;
    }
    logger.info(`Initializing GC with period=${formatDuration(periodMs)}`);
    this.#timer = setInterval(() => {
      this.run().catch(() => {
        // run() logs its own failures
      });
    }, periodMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass now; a pass already running is shared rather than doubled. */
  run(): Promise<GcResult> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<GcResult> {
    const { subject, cacheDir, logger } = this.#o;
    const fields = { module: 'filesystem_lib' };
    const started = performance.now();
    logger.info('fsRoot.GC() started', { ...fields, timestamp: new Date().toISOString() });
    try {
      const { images, layers } = await subject.collect(await listCachedLayers(cacheDir), async (unused) => {
        logger.info(
          `Found layersToRemove=${goSet(unused.layers)}, imagesToRemove=${goSet(unused.images)}`,
          fields,
        );
        for (const digest of unused.layers) {
          await rm(cachedLayerDir(cacheDir, digest), { recursive: true, force: true, maxRetries: 3 });
        }
      });
      const result = { images, layers, ms: performance.now() - started };
      logger.info('fsRoot.GC() finished', {
        ...fields,
        duration: goShortDuration(result.ms),
        timestamp: new Date().toISOString(),
      });
      this.#o.onRun?.(result);
      return result;
    } catch (err) {
      logger.error('fsRoot.GC() failed', { ...fields, error: describeError(err) });
      throw err;
    }
  }
}
