import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { type CommandSpec, compatibilityNotice, loggableValues, resolveCommandLine } from '../src/command.js';
import { defineFlags } from '../src/flag.js';
import { formatHelp } from '../src/help.js';
import { renderFlagReference } from '../src/reference.js';

const FLAGS = defineFlags([
  { name: 'zeta', type: 'bool', default: true, group: 'Main', description: 'last by name' },
  { name: 'alpha', type: 'string', default: '', group: 'Main', description: 'first by name' },
  { name: 'wait', type: 'duration', default: 1_800_000, group: 'Timing', description: 'how long' },
  { name: 'retries', type: 'int', default: 3, min: 1, max: 9, group: 'Timing', description: 'tries' },
  { name: 'delay', type: 'duration', default: 1_000, min: 500, group: 'Timing', description: 'pause' },
  {
    name: 'mode',
    type: 'enum',
    choices: ['none', 'k8s'],
    default: 'k8s',
    group: 'Main',
    description: 'Reporter: none|k8s, see <docs>',
  },
  { name: 'items', type: 'list', default: ['a', 'b'], description: 'ungrouped list' },
  {
    name: 'legacy_mb',
    type: 'int',
    default: 0,
    group: 'Timing',
    compatibility: 'use wait',
    extension: true,
    description: 'old knob',
  },
  { name: 'password', type: 'string', default: '', sensitive: true, description: 'secret `<user>:<pw>`' },
]);

const SPEC: CommandSpec<typeof FLAGS> = {
  program: 'demo',
  version: '1.2.3',
  summary: 'a demo.',
  flags: FLAGS,
};

function capture() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = (s: PassThrough) => () => String(s.read() ?? '');
  return { io: { stdout, stderr }, out: text(stdout), err: text(stderr) };
}

describe('formatHelp', () => {
  const help = formatHelp(SPEC);

  it('lists every flag with its default in Go form, its type and its meaning', () => {
    assert.match(help, /^ {2}-zeta=true \(bool\): last by name$/m);
    assert.match(help, /^ {2}-alpha="" \(string\): first by name$/m);
    assert.match(help, /^ {2}-wait=30m0s \(duration\): how long$/m);
    assert.match(help, /^ {2}-mode="k8s" \(none\|k8s\): Reporter: none\|k8s, see <docs>$/m);
    assert.match(help, /^ {2}-items="a,b" \(list\): ungrouped list$/m);
    assert.match(help, /^ {2}-legacy_mb=0 \(int\): Compatibility only, no effect \(use wait\): old knob$/m);
    assert.match(help, /^ {2}-retries=3 \(int, 1\.\.9\): tries$/m);
    assert.match(help, /^ {2}-delay=1s \(duration, min 500ms\): pause$/m);
    assert.match(help, /^ {2}-help: /m);
    assert.match(help, /^ {2}-version: /m);
  });

  it('groups flags in table order and sorts them by name within a group', () => {
    const order = [...help.matchAll(/^(\w[\w ]*):$|^ {2}-(\w+)/gm)].map((m) => m[1] ?? m[2]);
    assert.deepEqual(order, [
      'Usage of demo',
      'Main',
      'alpha',
      'mode',
      'zeta',
      'Timing',
      'delay',
      'legacy_mb',
      'retries',
      'wait',
      'Flags',
      'items',
      'password',
      'Other',
      'help',
      'version',
    ]);
  });
});

describe('renderFlagReference', () => {
  const md = renderFlagReference(SPEC);

  it('renders a section per group with one row per flag', () => {
    assert.match(md, /^## demo$/m);
    assert.match(md, /^### Main$/m);
    assert.match(md, /^### Timing$/m);
    assert.match(md, /^\| `--wait` \| duration \| `30m0s` \| how long \|$/m);
    assert.match(md, /^\| `--zeta` \| bool \| `true` \| last by name \|$/m);
    assert.match(md, /^\| `--retries` \| int \(1\.\.9\) \| `3` \| tries \|$/m);
    assert.equal(md.match(/^\| `--/gm)?.length, FLAGS.length);
  });

  it('escapes table and HTML syntax outside code spans, and marks special flags', () => {
    assert.match(
      md,
      /^\| `--mode` \| one of `none`, `k8s` \| `"k8s"` \| Reporter: none\\\|k8s, see &lt;docs&gt; \|$/m,
    );
    assert.match(
      md,
      /\| `--password` \| string \| `""` \| secret `<user>:<pw>` \*\(secret: never logged\)\* \|$/m,
    );
    assert.match(
      md,
      /\| `--legacy_mb` \| int \| `0` \| \*\*Compatibility only, no effect\*\* \(use wait\): old knob \*\(gcfs addition\)\* \|$/m,
    );
  });
});

describe('resolveCommandLine', () => {
  it('returns the configuration to run with', () => {
    const { io, out, err } = capture();
    const result = resolveCommandLine(SPEC, ['-wait=1s', '--alpha', 'b'], io);
    assert.ok(!('exitCode' in result));
    assert.equal(result.values.wait, 1_000);
    assert.equal(result.values.alpha, 'b');
    assert.equal(out() + err(), '');
  });

  it('prints help and version to stdout with exit code 0', () => {
    let c = capture();
    assert.deepEqual(resolveCommandLine(SPEC, ['--help'], c.io), { exitCode: 0 });
    assert.equal(c.out(), formatHelp(SPEC));
    c = capture();
    assert.deepEqual(resolveCommandLine(SPEC, ['-version'], c.io), { exitCode: 0 });
    assert.equal(c.out(), 'demo 1.2.3\n');
  });

  it('prints one line naming the flag to stderr with exit code 2', () => {
    let c = capture();
    assert.deepEqual(resolveCommandLine(SPEC, ['--bogus'], c.io), { exitCode: 2 });
    assert.equal(c.err(), 'demo: unknown flag --bogus\n');
    assert.equal(c.out(), '');
    c = capture();
    assert.deepEqual(resolveCommandLine(SPEC, ['--wait=soon'], c.io), { exitCode: 2 });
    assert.match(c.err(), /^demo: invalid flag --wait: "soon" is not a duration[^\n]*\n$/);
  });
});

describe('compatibilityNotice', () => {
  it('names each compatibility-only flag given, with why, in one line; nothing when none is', () => {
    const given = resolveCommandLine(SPEC, ['--legacy_mb=36', '--wait=1s']);
    assert.ok(!('exitCode' in given));
    assert.equal(
      compatibilityNotice(given),
      'Flags accepted for compatibility, without effect: --legacy_mb (use wait)',
    );
    const none = resolveCommandLine(SPEC, ['--wait=1s']);
    assert.ok(!('exitCode' in none));
    assert.equal(compatibilityNotice(none), undefined);
  });
});

describe('loggableValues', () => {
  it('hides sensitive values and shows durations in Go form', () => {
    const result = resolveCommandLine(SPEC, ['--password=s3cret!', '--wait=90s']);
    assert.ok(!('exitCode' in result));
    const fields = loggableValues(FLAGS, result.values);
    assert.equal(fields.password, '(redacted)');
    assert.equal(fields.wait, '1m30s');
    assert.deepEqual(fields.items, ['a', 'b']);
    assert.ok(!JSON.stringify(fields).includes('s3cret'));
  });
});
