import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isGcfsError } from '@gcfs/core';
import { findImage } from '../../src/daemon/image-lookup.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGES = [
  { name: `r.example:5000/team/app@${digest('a')}`, manifestDigest: digest('a') },
  { name: `r.example:5000/team/app@${digest('b')}`, manifestDigest: digest('b') },
  { name: `r.example:5000/team/api@${digest('c')}`, manifestDigest: digest('c') },
  { name: `docker.io/library/busybox@${digest('d')}`, manifestDigest: digest('d') },
];

const refused = (code: ErrorCode, pattern: RegExp) => (err: unknown) =>
  isGcfsError(err, code) && pattern.test(err.message);

describe('findImage: the image in use an operator names', () => {
  it('by its registered name, or a reference normalized to it', () => {
    assert.equal(findImage(IMAGES, IMAGES[2]!.name), IMAGES[2]);
    assert.equal(findImage(IMAGES, `busybox@${digest('d')}`), IMAGES[3]);
  });

  it('by a reference to its repository, with any tag, when one image of it is in use', () => {
    assert.equal(findImage(IMAGES, 'r.example:5000/team/api:v1'), IMAGES[2]);
    assert.equal(findImage(IMAGES, 'r.example:5000/team/api'), IMAGES[2]);
    assert.equal(findImage(IMAGES, 'busybox:1.36'), IMAGES[3]);
  });

  it('by repository and manifest digest when several of the repository are in use', () => {
    assert.equal(findImage(IMAGES, `r.example:5000/team/app:v2@${digest('b')}`), IMAGES[1]);
    assert.throws(
      () => findImage(IMAGES, 'r.example:5000/team/app:v1'),
      refused(ErrorCode.InvalidArgument, /names 2 images in use: .*@sha256:a+, .*@sha256:b+$/),
    );
  });

  it('refuses what names no image in use, and over-long input before parsing it', () => {
    for (const text of [
      'r.example:5000/team/none:v1',
      `r.example:5000/team/app@${digest('e')}`,
      'Not A Ref!',
    ]) {
      assert.throws(
        () => findImage(IMAGES, text),
        refused(ErrorCode.NotFound, /is not in use on this node$/),
      );
    }
    assert.throws(
      () => findImage(IMAGES, 'x'.repeat(100_000)),
      (err) => isGcfsError(err, ErrorCode.InvalidArgument),
    );
  });
});
