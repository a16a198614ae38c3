import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCriLog } from '../src/cri.js';
import { tempDirFor } from '../src/temp.js';

test('readCriLog: messages of both streams in order, partial lines joined, other lines skipped', async (t) => {
  const dir = await tempDirFor(t, 'gcfs-cri-log-');
  const path = join(dir.path, 'c.log');
  await writeFile(
    path,
    [
      '2026-11-29T14:00:00.000000001Z stdout F hello-from-cri',
      '2026-11-29T14:00:00.000000002Z stderr P first half ',
      '2026-11-29T14:00:00.000000003Z stderr F and the rest',
      '2026-11-29T14:00:00.000000004Z stdout F ',
      'not a CRI log line',
      '2026-11-29T14:00:00.000000005Z stdout P unfinished',
      '',
    ].join('\n'),
  );
  assert.deepEqual(await readCriLog(path), ['hello-from-cri', 'first half and the rest', '', 'unfinished']);
});
