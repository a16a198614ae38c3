import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { curl, RedirectFront, type RunningRegistry, startRegistry } from '../src/index.js';
import { pushBlob } from './blob-with-curl.js';

describe('redirect front', () => {
  let registry: RunningRegistry;
  let front: RedirectFront;
  const data = randomBytes(1000);
  let blobUrl: string;

  before(async () => {
    registry = await startRegistry();
    front = await RedirectFront.start(registry);
    const pushed = await pushBlob(registry.url, 'test/redirect', data);
    assert.equal(pushed.finish?.status, 201);
    blobUrl = `${front.url}/v2/test/redirect/blobs/${pushed.digest}`;
  });
  after(async () => {
    await front?.stop();
    await registry?.stop();
  });

  test('listens on 127.0.0.2 and sends the blob host on 127.0.0.3', () => {
    assert.match(front.host, /^127\.0\.0\.2:\d+$/);
    assert.match(front.blobHostUrl, /^http:\/\/127\.0\.0\.3:\d+$/);
  });

  test('non-blob requests go to the registry with the same path and query', async () => {
    const res = await curl([`${front.url}/v2/test/redirect/tags/list?n=10&last=a`]);
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, `${registry.url}/v2/test/redirect/tags/list?n=10&last=a`);
    const upload = await curl(['-X', 'POST', `${front.url}/v2/test/redirect/blobs/uploads/`]);
    assert.equal(upload.headers.location, `${registry.url}/v2/test/redirect/blobs/uploads/`);
    assert.equal((await curl([`${front.url}/other`])).status, 404);
  });

  test('blob reads land on the blob host, which did not see credentials sent to the front', async () => {
    const res = await curl(['-L', '-H', 'Authorization: Bearer front-secret', blobUrl]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, data);
    assert.equal(front.frontRequests.at(-1)?.headers.authorization, 'Bearer front-secret');
    assert.equal(front.blobRequests.at(-1)?.headers.authorization, undefined);

    // The recording would show a leak: curl forwards credentials when told to.
    await curl(['-L', '--location-trusted', '-H', 'Authorization: Bearer front-secret', blobUrl]);
    assert.equal(front.blobRequests.at(-1)?.headers.authorization, 'Bearer front-secret');
  });

  test('the blob host serves single ranges with 206 and refuses unsatisfiable ones', async () => {
    const middle = await curl(['-L', '-r', '10-19', blobUrl]);
    assert.equal(middle.status, 206);
    assert.equal(middle.headers['content-range'], `bytes 10-19/${data.length}`);
    assert.deepEqual(middle.body, data.subarray(10, 20));

    const tail = await curl(['-L', '-r', '990-', blobUrl]);
    assert.deepEqual(tail.body, data.subarray(990));
    const suffix = await curl(['-L', '-r', '-5', blobUrl]);
    assert.deepEqual(suffix.body, data.subarray(data.length - 5));
    const clamped = await curl(['-L', '-r', '995-5000', blobUrl]);
    assert.equal(clamped.headers['content-range'], `bytes 995-999/${data.length}`);

    const beyond = await curl(['-L', '-r', '1000-1001', blobUrl]);
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${data.length}`);

    const head = await curl(['-L', '-I', blobUrl]);
    assert.equal(head.headers['content-length'], String(data.length));
    const missing = await curl(['-L', `${front.url}/v2/test/redirect/blobs/sha256:${'0'.repeat(64)}`]);
    assert.equal(missing.status, 404);
  });
});
