import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger, formatLogrusText, LOG_LEVELS, type LogFormat, type LogLevel } from '../src/index.js';

function capture(format: LogFormat, level: LogLevel = 'info') {
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
  assert.equal(record.level, 'warning');
  assert.equal(record.msg, 'slow');
  assert.equal(record.image, 'docker.io/library/busybox:latest');
  assert.ok(!Number.isNaN(Date.parse(record.time)));
});

test('levels print as logrus prints them, in text and json: warning, not warn', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = capture(format, 'debug');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    const levels = lines.map((line) =>
      format === 'json' ? (JSON.parse(line) as { level: string }).level : /level=(\w+)/.exec(line)?.[1],
    );
    assert.deepEqual(levels, ['debug', 'info', 'warning', 'error', 'fatal'], format);
  }
});

test("--log_level takes logrus's names, warning and warn alike, and filters as logrus does", () => {
  assert.deepEqual(LOG_LEVELS, ['panic', 'fatal', 'error', 'warning', 'warn', 'info', 'debug', 'trace']);
  const shown = (level: LogLevel) => {
    const { logger, lines } = capture('text', level);
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    return lines.map((line) => /msg=(\w)/.exec(line)?.[1]).join('');
  };
  assert.equal(shown('trace'), 'diwef');
  assert.equal(shown('debug'), 'diwef');
  assert.equal(shown('info'), 'iwef');
  assert.equal(shown('warning'), 'wef');
  assert.equal(shown('warn'), 'wef');
  assert.equal(shown('error'), 'ef');
  assert.equal(shown('fatal'), 'f');
  assert.equal(shown('panic'), '');
  const trace = capture('text', 'trace').logger;
  assert.ok(trace.isLevelEnabled('trace'));
  const warning = capture('text', 'warning').logger;
  assert.ok(
    warning.isLevelEnabled('warn') && warning.isLevelEnabled('warning') && !warning.isLevelEnabled('info'),
  );
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
