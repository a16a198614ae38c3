import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger, formatLogrusText, type LogFormat } from '../src/index.js';

function capture(format: LogFormat, level: 'debug' | 'info' | 'warn' = 'info') {
  const sink = new PassThrough();
  const lines: string[] = [];
  sink.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return { logger: createLogger({ format, level, destination: sink }), lines };
}

test('text format is logrus-compatible: time, level, msg, then sorted fields, quoted when needed', () => {
  const { logger, lines } = capture('text');
  logger.child({ module: 'layercache' }).info('Detected 0 existing layers in cacheDir', { count: 0 });
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^time="?\d{4}-\d\d-\d\dT[\d:.]+Z"? level=info msg="Detected 0 existing layers in cacheDir" count=0 module=layercache$/,
  );
});

test('json format carries level, msg, time and fields', () => {
  const { logger, lines } = capture('json');
  logger.warn('slow', { image: 'docker.io/library/busybox:latest' });
  const record = JSON.parse(lines[0]!);
  assert.equal(record.level, 'warn');
  assert.equal(record.msg, 'slow');
  assert.equal(record.image, 'docker.io/library/busybox:latest');
  assert.ok(!Number.isNaN(Date.parse(record.time)));
});

test('levels filter: debug hidden at info, shown at debug', () => {
  const info = capture('text', 'info');
  info.logger.debug('hidden');
  assert.equal(info.lines.length, 0);
  const debug = capture('text', 'debug');
  debug.logger.debug('shown');
  assert.equal(debug.lines.length, 1);
});

test('credentials never reach the log, in messages, fields or errors', () => {
  const { logger, lines } = capture('text');
  logger.error('pull failed for https://alice:pw-123456@reg/v2/', {
    error: new Error('401 with Authorization: Bearer abcdef123456'),
    pull_secret: 'should-not-appear',
  });
  const line = lines.join('\n');
  assert.doesNotMatch(line, /pw-123456|abcdef123456|should-not-appear/);
  assert.match(line, /level=error/);
});

test('formatLogrusText quotes values with spaces and leaves bare ones', () => {
  const line = formatLogrusText({ time: 't', level: 'info', msg: 'a b', zeta: 'x y', alpha: 'bare' });
  assert.equal(line, 'time=t level=info msg="a b" alpha=bare zeta="x y"\n');
});
