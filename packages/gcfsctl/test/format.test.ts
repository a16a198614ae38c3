import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImageView, LayerView } from '@gcfs/gcfsd/admin-client';
import {
  formatBytes,
  imageProgress,
  imageStateText,
  layerNote,
  layerStateText,
  table,
} from '../src/format.js';

const layer = (state: LayerView['state'], size: number, extra: Partial<LayerView> = {}): LayerView => ({
  digest: `sha256:${state.padEnd(64, '0')}`,
  state,
  index: 'loaded',
  local: state === 'local',
  size,
  images: [],
  ...extra,
});

const image = (layers: LayerView[]): ImageView => ({
  name: 'r.example/app@sha256:1',
  path: 'images/x',
  manifestDigest: 'sha256:1',
  registeredAt: 0,
  layers,
});

describe('gcfsctl formatting', () => {
  it('sizes in binary units', () => {
    assert.deepEqual([0, 1023, 1024, 1536, 60 * 1024 * 1024, 3 * 1024 ** 4].map(formatBytes), [
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '60.0 MiB',
      '3.0 TiB',
    ]);
  });

  it('aligns table columns to the widest cell', () => {
    assert.equal(
      table(
        ['A', 'LONG'],
        [
          ['xyz', 'v'],
          ['1', ''],
        ],
      ),
      'A    LONG\nxyz  v\n1\n',
    );
  });

  it('says how far a download is, per layer and for the whole image in bytes', () => {
    const downloading = layer('downloading', 100, {
      download: { phase: 'downloading', bytes: 45, size: 100 },
    });
    assert.equal(layerStateText(downloading), 'downloading 45%');
    assert.equal(
      layerStateText(layer('downloading', 1, { download: { phase: 'queued', bytes: 0, size: 1 } })),
      'downloading (queued)',
    );
    const layers = [layer('local', 300), downloading, layer('streamed', 600)];
    assert.deepEqual(imageProgress(layers), { done: 345, total: 1000, percent: 34, local: 1 });
    assert.equal(imageStateText(image(layers)), 'downloading 34%');
    assert.equal(imageStateText(image([layer('local', 1), layer('local', 0)])), 'local');
    assert.equal(imageStateText(image([layer('streamed', 1), layer('attached', 1)])), 'attached');
    // Every byte fetched is not yet local: 99% until the last layer lands.
    const fetched = layer('downloading', 10, { download: { phase: 'downloading', bytes: 10, size: 10 } });
    assert.equal(imageProgress([layer('local', 90), fetched]).percent, 99);
  });

  it('names why a layer failed', () => {
    const failed = layer('failed', 1, {
      downloadFailure: { reason: 'blob does not match', code: 'ERR_DIGEST_MISMATCH' },
      indexFailure: 'sparse file',
    });
    assert.equal(imageStateText(image([failed, layer('local', 1)])), 'failed (1 of 2 layers)');
    assert.equal(
      layerNote(failed),
      'download failed: ERR_DIGEST_MISMATCH: blob does not match; cfsd cannot index it: sparse file',
    );
  });
});
