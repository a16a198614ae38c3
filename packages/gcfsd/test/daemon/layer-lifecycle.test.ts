// The registrar's layer lifecycle (layer-state.ts) with small honest stand-ins: a tree that
// records what it is told, an in-memory images-in-use DB, a cfsd that answers with a
// session, a downloader whose answers the test gives. No FUSE, no cfsd, no downloader.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { createLogger, digestOf, ErrorCode, GcfsError, isGcfsError, layerDirName } from '@gcfs/core';
import type { DownloadOutcome, DownloadRequest } from '@gcfs/downloader';
import { tempDirFor } from '@gcfs/testkit';
import { GarbageCollector } from '../../src/daemon/gc.js';
import type { ImageRecord, ImagesInUse } from '../../src/daemon/images-in-use.js';
import type { LayerDownloader } from '../../src/daemon/layer-downloads.js';
import { LAYER_TRANSITIONS, LayerStates } from '../../src/daemon/layer-state.js';
import { Registrar } from '../../src/daemon/registrar.js';
import type { ImageTree } from '../../src/daemon/served-images.js';
import { type SessionLike, SessionPool } from '../../src/daemon/sessions.js';

const A = digestOf('layer a');
const B = digestOf('layer b');
const C = digestOf('layer c');
const IMAGE = '127.0.0.1:5000/app:v1';
const OTHER = '127.0.0.1:5000/other:v1';
const LAYERS: Record<string, string[]> = { [IMAGE]: [A, B], [OTHER]: [B, C] };

/** What the registrar told the tree, and an addLayer the test can hold or fail. */
class RecordingTree implements ImageTree {
  readonly layers = new Set<string>();
  readonly local = new Map<string, string>();
  readonly images = new Map<string, readonly string[]>();
  readonly holds = new Map<string, Promise<void>>();
  readonly failing = new Set<string>();

  async addLayer(digest: string): Promise<void> {
    await this.holds.get(digest);
    if (this.failing.has(digest)) throw new GcfsError(ErrorCode.BackendUnavailable, `no index of ${digest}`);
    this.layers.add(digest);
  }
  useLocalLayer(digest: string, dir: string): void {
    this.local.set(digest, dir);
  }
  setImage(name: string, layers: readonly string[]): void {
    this.images.set(name, layers);
  }
  removeImage(name: string): void {
    this.images.delete(name);
  }
  removeLayer(digest: string): void {
    this.layers.delete(digest);
    this.local.delete(digest);
  }
}

class MemoryImagesInUse implements ImagesInUse {
  readonly records = new Map<string, ImageRecord>();
  failPuts = false;

  async put(record: ImageRecord): Promise<void> {
    if (this.failPuts) throw new Error('disk full');
    this.records.set(record.name, record);
  }
  async remove(name: string): Promise<boolean> {
    return this.records.delete(name);
  }
  list() {
    return { images: [...this.records.values()], invalid: [] };
  }
  async close(): Promise<void> {}
}

/** Downloads wait for the test's answer. */
class ManualDownloader implements LayerDownloader {
  readonly waiting: Array<{ request: DownloadRequest; answer: (outcome: DownloadOutcome) => void }> = [];

  download(request: DownloadRequest): Promise<DownloadOutcome> {
    return new Promise((answer) => this.waiting.push({ request, answer }));
  }

  readonly cancelled: string[] = [];

  /** As the downloader does: the layer's pending download answers ERR_ABORTED. */
  async cancel(layerId: string): Promise<boolean> {
    this.cancelled.push(layerId);
    const index = this.waiting.findIndex((w) => w.request.layerId === layerId);
    if (index < 0) return false;
    const [{ answer }] = this.waiting.splice(index, 1) as [ManualDownloader['waiting'][number]];
    answer({
      succeeded: false,
      hasMismatchedHash: false,
      errorReason: 'cancelled',
      errorCode: ErrorCode.Aborted,
      bytes: 0,
      seconds: 0,
      alreadyPresent: false,
    });
    return true;
  }

  /** Answer the oldest request for `layer`. */
  async finish(layer: string, outcome: Partial<DownloadOutcome> = {}): Promise<void> {
    // A retry comes after a backoff timer (1 ms here): wait in time, not in a count of turns.
    const deadline = Date.now() + 2_000;
    while (!this.waiting.some((w) => w.request.layerId === layer) && Date.now() < deadline) await tick();
    const index = this.waiting.findIndex((w) => w.request.layerId === layer);
    assert.ok(index >= 0, `no download of ${layer} asked for`);
    const [{ answer }] = this.waiting.splice(index, 1) as [ManualDownloader['waiting'][number]];
    answer({
      succeeded: true,
      hasMismatchedHash: false,
      errorReason: '',
      errorCode: '',
      bytes: 1,
      seconds: 0,
      alreadyPresent: false,
      ...outcome,
    });
    for (let i = 0; i < 5; i++) await tick();
  }
}

function sessionOf(name: string, indexed = LAYERS[name]): SessionLike {
  return {
    manifestDigest: digestOf(`manifest of ${name}`),
    streamable: true,
    indexedLayers: indexed,
    layers: LAYERS[name]!.map((digest) => ({
      digest,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      size: 1,
    })),
    close: () => {},
  } as unknown as SessionLike;
}

async function setup(t: TestContext, options: { failAuth?: boolean; indexed?: string[] } = {}) {
  const dir = await tempDirFor(t);
  const cacheDir = join(dir.path, 'layers');
  const lines: string[] = [];
  const log = new PassThrough();
  log.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const logger = createLogger({ destination: log, level: 'debug' });
  const tree = new RecordingTree();
  const db = new MemoryImagesInUse();
  const downloader = new ManualDownloader();
  const auth = { fail: options.failAuth ?? false, calls: 0 };
  /** A registrar on the test's tree, DB and downloader; without `backend`, as gcfsd without --addr. */
  const make = ({ backend = true } = {}) =>
    new Registrar({
      cfsd: backend
        ? {
            authImage: async (image) => {
              auth.calls++;
              if (auth.fail) throw new GcfsError(ErrorCode.BackendUnavailable, 'cfsd is away');
              return sessionOf(image, options.indexed);
            },
          }
        : undefined,
      tree,
      sessions: new SessionPool(),
      db,
      secrets: { forImage: async () => ({ credential: {}, origin: 'none' }) },
      downloader,
      cacheDir,
      prefetch: false,
      logger,
      restoreBackoff: { initialMs: 1, maxMs: 1 },
      downloadBackoff: { initialMs: 1, maxMs: 1 },
    });
  const registrar = make();
  t.after(() => registrar.close());
  const gc = new GarbageCollector({ subject: registrar, cacheDir, logger, periodMs: 0 });
  /** The `Layer state` lines of one layer, as `from→to`. */
  const history = (layer: string) =>
    lines
      .filter((line) => line.includes('msg="Layer state"') && line.includes(layer))
      .map((line) => `${/ from=(\w+)/.exec(line)?.[1]}→${/ to=(\w+)/.exec(line)?.[1]}`);
  return { registrar, make, tree, db, downloader, gc, lines, history, auth, cacheDir };
}

describe('layer lifecycle', () => {
  it('the transition table holds what the docs say, and an illegal move throws', () => {
    const states = new LayerStates({ logger: createLogger({ destination: new PassThrough() }) });
    states.attach(A, {});
    assert.equal(
      states.transition(A, ['streamed'], 'downloading'),
      false,
      'not in an expected state: no change',
    );
    assert.throws(
      () => states.transition(A, ['attached'], 'failed'),
      /illegal layer transition attached → failed/,
    );
    assert.deepEqual(LAYER_TRANSITIONS.local, [], 'local is final until GC');
    assert.equal(states.transition(digestOf('unknown'), ['attached'], 'streamed'), false);
  });

  it('a first pull: layers cfsd has not indexed download at once; whichever of index and download comes first serves, and a download the index beat yields', async (t) => {
    const { registrar, tree, downloader, history, lines } = await setup(t, { indexed: [] });
    const indexA = Promise.withResolvers<void>();
    const indexB = Promise.withResolvers<void>();
    tree.holds.set(A, indexA.promise);
    tree.holds.set(B, indexB.promise);
    await registrar.register(IMAGE);
    // Both downloads asked for at once, not after a quiet period; nothing is servable yet.
    for (let i = 0; i < 50 && downloader.waiting.length < 2; i++) await tick();
    assert.deepEqual(downloader.waiting.map((w) => w.request.layerId).sort(), [A, B].sort());
    assert.equal(registrar.layerAvailability(IMAGE, 0), 'pending');
    // A: its index comes first. It is servable, and its download gives way.
    indexA.resolve();
    for (let i = 0; i < 50 && registrar.layerState(A) !== 'streamed'; i++) await tick();
    assert.equal(registrar.layerAvailability(IMAGE, 0), 'servable');
    assert.deepEqual(downloader.cancelled, [A]);
    assert.ok(lines.some((line) => line.includes('Layer download stopped: its index came first')));
    assert.ok(!lines.some((line) => line.includes('succeeded=false')), 'a yield is not a failure');
    // Not downloaded again while the pull goes on (B on its way): the container has not started,
    // so no pause in its reads could be told from its start.
    await sleep(300);
    assert.equal(registrar.layerState(A), 'streamed');
    // B: its download comes first. It is local; its index arriving later changes nothing.
    await downloader.finish(B);
    assert.equal(registrar.layerState(B), 'local');
    assert.equal(registrar.layerAvailability(IMAGE, 1), 'servable');
    indexB.resolve();
    // The pull can end now: A is downloaded again after the pause in reads (none here: at once).
    for (let i = 0; i < 100 && registrar.layerState(A) !== 'downloading'; i++) await sleep(10);
    assert.deepEqual(history(A), [
      'none→attached',
      'attached→downloading',
      'downloading→streamed',
      'streamed→downloading',
    ]);
    assert.equal(registrar.layerState(B), 'local');
    assert.deepEqual(downloader.cancelled, [A], 'a finished download is not cancelled');
  });

  it('registration: attached, streamed, downloading, local, one log line each', async (t) => {
    const { registrar, tree, downloader, history, cacheDir } = await setup(t);
    const image = await registrar.register(IMAGE);
    assert.deepEqual(image.layers, [
      { digest: A, local: false },
      { digest: B, local: false },
    ]);
    assert.deepEqual([...tree.layers].sort(), [A, B].sort());
    assert.deepEqual(tree.images.get(IMAGE), [A, B]);
    assert.equal(registrar.layerAvailability(IMAGE, 0), 'servable');
    await downloader.finish(A);
    assert.equal(registrar.layerState(A), 'local');
    assert.equal(tree.local.get(A), join(cacheDir, layerDirName(A)));
    assert.equal(registrar.layerState(B), 'downloading');
    assert.deepEqual(history(A), [
      'none→attached',
      'attached→streamed',
      'streamed→downloading',
      'downloading→local',
    ]);
    assert.deepEqual(registrar.layerCounts(), {
      attached: 0,
      streamed: 0,
      downloading: 1,
      local: 1,
      failed: 0,
    });
  });

  it('a registration that fails after adding layers leaves them to GC', async (t) => {
    const { registrar, tree, db, gc } = await setup(t);
    db.failPuts = true;
    await assert.rejects(registrar.register(IMAGE), /disk full/);
    assert.deepEqual([...tree.layers].sort(), [A, B].sort(), 'the layers were put under layers/');
    assert.equal(tree.images.size, 0);
    const collected = await gc.run();
    assert.deepEqual(collected.layers.sort(), [A, B].sort());
    assert.equal(tree.layers.size, 0);
    assert.equal(registrar.layerState(A), undefined);
  });

  it('GC leaves the layers of a registration under way alone', async (t) => {
    const { registrar, tree, gc } = await setup(t);
    const gate = Promise.withResolvers<void>();
    tree.holds.set(B, gate.promise);
    const registering = registrar.register(IMAGE);
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual((await gc.run()).layers, []);
    gate.resolve();
    await registering;
    assert.deepEqual([...tree.layers].sort(), [A, B].sort());
    assert.deepEqual((await gc.run()).layers, []);
  });

  it('restore: the DB images in the tree at once, downloads started, indexes once cfsd answers', async (t) => {
    const { registrar, make, tree, downloader, auth, history } = await setup(t);
    await registrar.register(IMAGE);
    await downloader.finish(A);
    registrar.close();
    downloader.waiting.length = 0;

    // A new daemon: cfsd away at first.
    tree.layers.clear();
    tree.local.clear();
    auth.fail = true;
    const restarted = make();
    t.after(() => restarted.close());
    assert.equal(await restarted.restore(), 1);
    assert.deepEqual(tree.images.get(IMAGE), [A, B]);
    // A is not in the (empty) cache dir of this test: both are downloaded again.
    assert.notEqual(restarted.layerAvailability(IMAGE, 1), 'servable');
    for (let i = 0; i < 20 && restarted.layerState(B) !== 'downloading'; i++) await tick();
    assert.equal(restarted.layerState(B), 'downloading');
    auth.fail = false;
    for (let i = 0; i < 200 && restarted.layerAvailability(IMAGE, 1) !== 'servable'; i++)
      await new Promise((r) => setTimeout(r, 2));
    assert.equal(restarted.layerAvailability(IMAGE, 1), 'servable', 'streamed while its download runs');
    assert.equal(restarted.layerState(B), 'downloading');
    await downloader.finish(B);
    assert.equal(restarted.layerState(B), 'local');
    assert.deepEqual(history(B).slice(-3), ['none→attached', 'attached→downloading', 'downloading→local']);
  });

  it('without a content service (no --addr): a registration is refused with ERR_NO_BACKEND; restored images are served from their downloads, never authorized', async (t) => {
    const { registrar, make, tree, downloader, auth, lines } = await setup(t);
    await registrar.register(IMAGE);
    registrar.close();
    downloader.waiting.length = 0;
    tree.layers.clear();
    const calls = auth.calls;

    const offline = make({ backend: false });
    t.after(() => offline.close());
    await assert.rejects(offline.register(OTHER), (err) => {
      assert.ok(isGcfsError(err, ErrorCode.NoBackend), String(err));
      assert.match(err.describe(), /no content service address \(--addr\).*hint: set --addr/);
      return true;
    });
    assert.ok(!lines.some((line) => line.includes(`Registering image ${OTHER}`)));
    assert.equal(tree.images.has(OTHER), false);

    assert.equal(await offline.restore(), 1);
    assert.deepEqual(tree.images.get(IMAGE), [A, B]);
    assert.equal(lines.filter((line) => line.includes('No content service (--addr)')).length, 1);
    await downloader.finish(A);
    await downloader.finish(B);
    assert.equal(offline.layerAvailability(IMAGE, 0), 'servable');
    assert.equal(offline.layerAvailability(IMAGE, 1), 'servable');
    assert.equal(auth.calls, calls, 'no AuthImage without a content service');
  });

  it('re-registration of the same image keeps its layers and starts no second download', async (t) => {
    const { registrar, downloader, tree } = await setup(t);
    await registrar.register(IMAGE);
    for (let i = 0; i < 5; i++) await tick();
    const asked = downloader.waiting.length;
    await registrar.register(IMAGE);
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(downloader.waiting.length, asked);
    assert.equal(registrar.list().length, 1);
    assert.deepEqual(tree.images.get(IMAGE), [A, B]);
    await registrar.register(OTHER);
    assert.equal(registrar.layerState(B), 'downloading', 'B, shared, is downloaded once');
    assert.equal(registrar.layerState(C), 'downloading');
  });

  it('a download that completes after GC removed the layer does not serve it again', async (t) => {
    const { registrar, downloader, tree, gc, history } = await setup(t);
    await registrar.register(IMAGE);
    await registrar.unregister(IMAGE);
    assert.deepEqual((await gc.run()).layers.sort(), [A, B].sort());
    await downloader.finish(A);
    assert.equal(registrar.layerState(A), undefined);
    assert.equal(tree.local.has(A), false);
    assert.deepEqual(history(A).slice(-1), ['downloading→removed']);
    // Registered again while the old download of B still runs: it joins it.
    await registrar.register(IMAGE);
    await downloader.finish(B);
    assert.equal(registrar.layerState(B), 'local');
    assert.equal(tree.local.has(B), true);
  });

  it('gives up after repeated failures: failed once, logged once, retried on re-registration', async (t) => {
    const { registrar, downloader, lines } = await setup(t);
    await registrar.register(IMAGE);
    const reason = `ENAMETOOLONG: name too long, mkdir '${'/a'.repeat(10_000)}'`;
    for (let attempt = 0; attempt < 3; attempt++) {
      await downloader.finish(A, { succeeded: false, errorReason: reason, errorCode: ErrorCode.LayerWrite });
    }
    assert.equal(registrar.layerState(A), 'failed');
    assert.equal(registrar.layerAvailability(IMAGE, 0), 'servable', 'it stays streamed');
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(downloader.waiting.filter((w) => w.request.layerId === A).length, 0, 'no fourth attempt');
    const failed = lines.filter((line) => line.includes('to=failed'));
    assert.equal(failed.length, 1);
    assert.match(failed[0]!, /level=error/);
    assert.match(failed[0]!, /error_code=ERR_LAYER_WRITE/);
    assert.ok(failed[0]!.length < 2_000, `the give-up line is bounded (${failed[0]!.length})`);
    assert.ok(
      lines.every((line) => line.length < 3_000),
      'every line is bounded',
    );

    await registrar.register(IMAGE);
    assert.equal(registrar.layerState(A), 'downloading');
    await downloader.finish(A);
    assert.equal(registrar.layerState(A), 'local');
  });
});
