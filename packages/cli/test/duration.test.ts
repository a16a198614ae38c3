import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DurationSyntaxError, formatDuration, parseDuration } from '../src/duration.js';

describe('parseDuration', () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['+0', 0],
    ['0s', 0],
    ['1s', 1_000],
    ['3m', 180_000],
    ['30m0s', 1_800_000],
    ['1h30m', 5_400_000],
    ['1h30m15s', 5_415_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['1.s', 1_000],
    ['1.5h', 5_400_000],
    ['2000us', 2],
    ['3000000ns', 3],
    ['1000µs', 1],
    ['1000μs', 1],
    ['-2m', -120_000],
    ['1m1m', 120_000],
  ];
  for (const [text, ms] of cases) {
    it(`parses ${text}`, () => assert.equal(parseDuration(text), ms));
  }

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['-', /empty/],
    ['1', /number followed by a unit/],
    ['10', /number followed by a unit/],
    ['3x', /unknown unit "x"/],
    ['1sec', /unknown unit "sec"/],
    ['s', /number followed by a unit/],
    ['.s', /number followed by a unit/],
    ['1h 30m', /unknown unit "h "/],
    ['1us', /whole number of milliseconds/],
    ['1.0005s', /whole number of milliseconds/],
    ['9999999999h', /out of range/],
    ['abc', /number followed by a unit/],
  ];
  for (const [text, reason] of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDuration(text),
        (err) => err instanceof DurationSyntaxError && reason.test(err.message),
      );
    });
  }
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [1, '1ms'],
    [500, '500ms'],
    [1_000, '1s'],
    [1_500, '1.5s'],
    [1_050, '1.05s'],
    [60_000, '1m0s'],
    [180_000, '3m0s'],
    [1_800_000, '30m0s'],
    [3_600_000, '1h0m0s'],
    [5_400_000, '1h30m0s'],
    [5_415_250, '1h30m15.25s'],
    [-120_000, '-2m0s'],
  ];
  for (const [ms, text] of cases) {
    it(`formats ${ms}ms as ${text} and parses it back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }

  it('refuses fractions of a millisecond', () => {
    assert.throws(() => formatDuration(0.5), RangeError);
  });
});
