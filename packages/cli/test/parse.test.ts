import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGcfsError } from '@gcfs/core';
import { defineFlags, type FlagValues } from '../src/flag.js';
import { parseFlags } from '../src/parse.js';

const FLAGS = defineFlags([
  { name: 'enabled', type: 'bool', default: false, description: 'a switch' },
  { name: 'on_by_default', type: 'bool', default: true, description: 'another switch' },
  { name: 'name', type: 'string', default: 'x', description: 'a string' },
  { name: 'count', type: 'int', default: 3, min: 1, max: 10, description: 'an int' },
  { name: 'offset', type: 'int', default: 0, description: 'a signed int' },
  { name: 'period', type: 'duration', default: 180_000, min: 0, description: 'a duration' },
  { name: 'level', type: 'enum', choices: ['low', 'high'], default: 'low', description: 'an enum' },
  { name: 'tags', type: 'list', default: ['a'], description: 'a list' },
  {
    name: 'path',
    type: 'string',
    default: '',
    validate: (v) => (v.includes('..') ? 'must not contain ..' : undefined),
    description: 'validated',
  },
  { name: 'secret', type: 'string', default: '', sensitive: true, description: 'a credential' },
  { name: 'old_size', type: 'int', default: 0, compatibility: 'use count', description: 'old' },
]);

type Values = FlagValues<typeof FLAGS>;

function run(...argv: string[]): Values {
  const result = parseFlags(FLAGS, argv);
  assert.equal(result.action, 'run');
  return result.values;
}

function rejects(argv: string[], flag: string | undefined, message: RegExp): void {
  assert.throws(
    () => parseFlags(FLAGS, argv),
    (err) => {
      assert.ok(isGcfsError(err, 'ERR_INVALID_FLAG'), String(err));
      assert.match(err.message, message);
      assert.equal(err.details.flag, flag);
      return true;
    },
  );
}

describe('parseFlags', () => {
  it('gives every default when nothing is set, keyed by flag name only', () => {
    const result = parseFlags(FLAGS, []);
    assert.equal(result.action, 'run');
    assert.deepEqual(result.values, {
      enabled: false,
      on_by_default: true,
      name: 'x',
      count: 3,
      offset: 0,
      period: 180_000,
      level: 'low',
      tags: ['a'],
      path: '',
      secret: '',
      old_size: 0,
    });
    assert.equal(result.explicit.size, 0);
    assert.deepEqual(result.compatibility, []);
  });

  it('accepts --x=v, --x v, -x=v and -x v', () => {
    for (const argv of [
      ['--name=foo', '--count=5'],
      ['--name', 'foo', '--count', '5'],
      ['-name=foo', '-count=5'],
      ['-name', 'foo', '-count', '5'],
    ]) {
      const values = run(...argv);
      assert.equal(values.name, 'foo', argv.join(' '));
      assert.equal(values.count, 5, argv.join(' '));
    }
  });

  it('takes the next argument as the value even when it starts with a dash', () => {
    const values = run('--offset', '-7', '-name', '--count');
    assert.equal(values.offset, -7);
    assert.equal(values.name, '--count');
    assert.equal(values.count, 3);
  });

  it('keeps everything after the first = in the value', () => {
    assert.equal(run('--name=a=b=c').name, 'a=b=c');
    assert.equal(run('--name=').name, '');
  });

  it('parses bools as a bare flag or with an explicit value', () => {
    assert.equal(run('--enabled').enabled, true);
    assert.equal(run('-enabled').enabled, true);
    assert.equal(run('--enabled=true').enabled, true);
    assert.equal(run('--enabled=1').enabled, true);
    assert.equal(run('-on_by_default=false').on_by_default, false);
    assert.equal(run('--on_by_default=false').on_by_default, false);
    assert.equal(run('--on_by_default=0').on_by_default, false);
    assert.equal(run('--on_by_default=F').on_by_default, false);
  });

  it('does not let a bare bool consume the next argument', () => {
    const values = run('--enabled', '--name=y');
    assert.equal(values.enabled, true);
    assert.equal(values.name, 'y');
    rejects(['--on_by_default', 'false'], undefined, /^unexpected argument "false"$/);
  });

  it('parses durations in Go syntax into milliseconds', () => {
    assert.equal(run('--period=30m0s').period, 1_800_000);
    assert.equal(run('-period', '1s').period, 1_000);
    assert.equal(run('--period=1h30m').period, 5_400_000);
    assert.equal(run('--period=500ms').period, 500);
    assert.equal(run('--period=0').period, 0);
  });

  it('parses enums', () => {
    assert.equal(run('--level=high').level, 'high');
    assert.equal(run('-level', 'low').level, 'low');
    assert.equal(run('--level=HIGH').level, 'high', 'any case, as logrus reads its levels');
    assert.throws(() => run('--level=higher'), /must be one of low, high/);
  });

  it('parses lists from repeats and commas, replacing the default', () => {
    assert.deepEqual(run('--tags=b').tags, ['b']);
    assert.deepEqual(run('--tags=b,c', '-tags', 'd').tags, ['b', 'c', 'd']);
    assert.deepEqual(run('--tags=').tags, []);
  });

  it('lets the last of repeated scalar flags win', () => {
    assert.equal(run('--count=4', '-count=6').count, 6);
  });

  it('records explicit flags and the compatibility-only ones given', () => {
    const result = parseFlags(FLAGS, ['--old_size=36', '--count=3']);
    assert.equal(result.action, 'run');
    assert.deepEqual([...result.explicit].sort(), ['count', 'old_size']);
    assert.deepEqual(result.compatibility, [{ flag: 'old_size', reason: 'use count' }]);
    const none = parseFlags(FLAGS, ['--count=3']);
    assert.equal(none.action, 'run');
    assert.deepEqual(none.compatibility, []);
  });

  it('answers help and version', () => {
    for (const arg of ['--help', '-help', '-h', '--h'])
      assert.deepEqual(parseFlags(FLAGS, [arg]), { action: 'help' });
    assert.deepEqual(parseFlags(FLAGS, ['--count=2', '-version']), { action: 'version' });
  });

  it('accepts a trailing -- and nothing after it', () => {
    assert.equal(run('--count=2', '--').count, 2);
    rejects(['--', 'x'], undefined, /unexpected argument "x"/);
  });

  it('rejects unknown flags, naming them', () => {
    rejects(['--nope=1'], 'nope', /^unknown flag --nope$/);
    rejects(['-nope'], 'nope', /^unknown flag --nope$/);
    rejects(['--Count=1'], 'Count', /^unknown flag --Count$/);
    // no camelCase or negation aliases
    rejects(['--onByDefault'], 'onByDefault', /unknown flag/);
    rejects(['--no-enabled'], 'no-enabled', /unknown flag/);
  });

  it('rejects positional arguments', () => {
    rejects(['stray'], undefined, /^unexpected argument "stray"$/);
    rejects(['-'], undefined, /^unexpected argument "-"$/);
  });

  it('rejects bad values, naming the flag and the reason', () => {
    rejects(['--count=abc'], 'count', /^invalid flag --count: "abc" is not an integer$/);
    rejects(['--count=1.5'], 'count', /not an integer/);
    rejects(['--count='], 'count', /not an integer/);
    rejects(['--count=99999999999999999999'], 'count', /not an integer/);
    rejects(['--count=0'], 'count', /^invalid flag --count: "0" must be at least 1$/);
    rejects(['--count=11'], 'count', /must be at most 10/);
    rejects(['--period=3x'], 'period', /^invalid flag --period: "3x" is not a duration.*unknown unit "x"/);
    rejects(['--period=10'], 'period', /^invalid flag --period: "10" is not a duration/);
    rejects(['--period=-1s'], 'period', /^invalid flag --period: "-1s" must be at least 0s$/);
    rejects(['--level=medium'], 'level', /^invalid flag --level: "medium" must be one of low, high$/);
    rejects(['--enabled=yes'], 'enabled', /^invalid flag --enabled: "yes" is not a boolean/);
    rejects(['--path=a/../b'], 'path', /^invalid flag --path: "a\/..\/b" must not contain \.\.$/);
  });

  it('rejects a missing value', () => {
    rejects(['--count'], 'count', /^invalid flag --count: missing value$/);
    rejects(['-name'], 'name', /missing value/);
  });

  it('never puts the value of a sensitive flag in an error', () => {
    const table = defineFlags([
      { name: 'token', type: 'int', default: 0, sensitive: true, description: 'a numeric secret' },
    ]);
    assert.throws(
      () => parseFlags(table, ['--token=hunter2-secret']),
      (err) => isGcfsError(err) && !err.message.includes('hunter2') && /the value/.test(err.message),
    );
  });
});

describe('defineFlags', () => {
  it('rejects names that are not snake_case, duplicates, built-ins and bad defaults', () => {
    const description = 'd';
    assert.throws(
      () => defineFlags([{ name: 'camelCase', type: 'bool', default: false, description }]),
      /snake_case/,
    );
    assert.throws(
      () => defineFlags([{ name: 'with-dash', type: 'bool', default: false, description }]),
      /snake_case/,
    );
    assert.throws(
      () =>
        defineFlags([
          { name: 'a', type: 'bool', default: false, description },
          { name: 'a', type: 'int', default: 0, description },
        ]),
      /defined twice/,
    );
    assert.throws(
      () => defineFlags([{ name: 'help', type: 'bool', default: false, description }]),
      /built in/,
    );
    assert.throws(
      () => defineFlags([{ name: 'e', type: 'enum', choices: ['a', 'b'], default: 'c', description }]),
      /default of flag "e" is invalid: must be one of a, b/,
    );
    assert.throws(
      () => defineFlags([{ name: 'n', type: 'int', default: 0, min: 1, description }]),
      /at least 1/,
    );
  });
});
