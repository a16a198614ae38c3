// Redaction and the reference parser see text from clients (image names in errors, log
// lines) of any length: random and adversarial inputs must take time linear in their size.

import { test } from 'node:test';
import { redact } from '@gcfs/core';
import { parseReference } from '@gcfs/registry';
import { assertLinearTime, type LinearTimeCase, randomText, seededRandom } from '@gcfs/testkit';

const KIB = 1024;
const RATIO = 256;

/** Cases of `RATIO` KiB against 1 KiB, each input built by repeating `unit` (cut to size). */
function repeated(cases: Record<string, string>, size = KIB): Array<LinearTimeCase<string>> {
  const fill = (unit: string, length: number) =>
    unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
  return Object.entries(cases).map(([name, unit]) => ({
    name,
    small: fill(unit, size),
    large: fill(unit, size * RATIO),
    ratio: RATIO,
  }));
}

const random = seededRandom(11);
const PIECES = [
  'a',
  'Z',
  '0',
  ':',
  '/',
  '@',
  ' ',
  '"',
  '\\',
  '=',
  '?',
  '&',
  '://',
  'Bearer ',
  'password',
  'token=',
];

test('redact takes linear time on adversarial and random text', async () => {
  await assertLinearTime(redact, [
    ...repeated({
      'a run of letters without :// (the URL scheme backtracked on it)': 'a',
      'schemes with no userinfo end': 'a://',
      'userinfo with no @': 'http://user:pass',
      'colons and slashes': ':/',
      'Authorization schemes and spaces': 'Bearer  ',
      'unterminated secret fields': 'password:"\\"',
      'secret keys and separators': '"token" = ',
      'secret query parameters without values': '&token=',
    }),
    {
      name: 'random text of the patterns’ own characters',
      small: randomText(random, PIECES, KIB),
      large: randomText(random, PIECES, KIB * RATIO),
      ratio: RATIO,
    },
  ]);
});

test('parseReference takes linear time, and constant time past its limit', async () => {
  const parse = (text: string) => {
    try {
      parseReference(text);
    } catch {}
  };
  await assertLinearTime(parse, [
    ...repeated({
      'the probe: a host then a long repository': '127.0.0.1:5000/aaaaaaaaaaaaaaaa:1',
      'separators between components': 'a-_.a__b--c/',
      'host labels': 'a-b.',
      'tags and digests': ':@sha256:',
      'random text of the grammar’s characters': randomText(
        random,
        ['a', '-', '.', '_', '/', ':', '@', 'A', '0'],
        KIB,
      ),
    }),
  ]);
});
