import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  digestOf,
  imageDirName,
  layerDirName,
  layerOfDirName,
  streamedLayerTarget,
  untarDirName,
} from '../src/index.js';

test('names of layers and images on a node, as GKE lays them out', () => {
  const digest = digestOf('layer');
  const hex = digest.slice('sha256:'.length);
  assert.equal(layerDirName(digest), `sha256=${hex}`);
  assert.equal(untarDirName(digest), `untar_sha256:${hex}`);
  assert.equal(streamedLayerTarget(digest), `../../layers/sha256=${hex}`);
  assert.equal(imageDirName('host:5000/repo/app:v1'), 'host=5000#repo#app=v1');
  assert.equal(imageDirName('host/app@sha256:ab'), 'host#app@sha256=ab');
});

test('layerOfDirName reads back a layer dir name and nothing else', () => {
  const digest = digestOf('layer');
  assert.equal(layerOfDirName(layerDirName(digest)), digest);
  for (const other of ['README', untarDirName(digest), 'sha256=abc', `md5=${'a'.repeat(64)}`, '=', digest]) {
    assert.equal(layerOfDirName(other), undefined, other);
  }
});
