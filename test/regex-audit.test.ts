// Every regular expression in the project's code, found by parsing the sources, is checked
// by recheck (a static ReDoS checker: automaton analysis, fuzzing where that cannot decide)
// so that none can take super-linear time; a new pattern that could fails here. Patterns
// built at run time cannot be checked statically: each is listed below with why it is safe.

import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { check } from 'recheck';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** `new RegExp(...)` sites whose pattern is not a literal, and why each is safe. */
const BUILT_AT_RUN_TIME: Record<string, string> = {
  'packages/testkit/src/token-server.ts':
    "a test token server's scope globs, written by the tests themselves, never by a client",
  'scripts/benchmarks/workloads.mjs': "a benchmark workload's ready line, written in the workload table",
  'scripts/benchmarks/fuse.mjs': 'a /proc/meminfo field name, a constant of the script',
};

interface Found {
  file: string;
  line: number;
  source?: string;
  flags?: string;
}

function regexesIn(file: string): Found[] {
  const text = readFileSync(`${root}/${file}`, 'utf8');
  const kind = file.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const found: Found[] = [];
  const at = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isRegularExpressionLiteral(node)) {
      const slash = node.text.lastIndexOf('/');
      found.push({
        file,
        line: at(node),
        source: node.text.slice(1, slash),
        flags: node.text.slice(slash + 1),
      });
    } else if (
      (ts.isNewExpression(node) || ts.isCallExpression(node)) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'RegExp'
    ) {
      const [pattern, flags] = node.arguments ?? [];
      if (pattern && ts.isStringLiteralLike(pattern) && (!flags || ts.isStringLiteralLike(flags))) {
        found.push({ file, line: at(node), source: pattern.text, flags: flags?.text ?? '' });
      } else {
        found.push({ file, line: at(node) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const files = globSync(['packages/*/src/**/*.ts', 'scripts/**/*.mjs'], { cwd: root })
  .filter((file) => !file.includes('/gen/'))
  .sort();
const regexes = files.flatMap(regexesIn);

test('the audit finds the project’s regular expressions', () => {
  assert.ok(files.length > 100, `${files.length} files`);
  assert.ok(regexes.length > 30, `${regexes.length} regexes`);
});

test('every regular expression built at run time is listed with why it is safe', () => {
  const dynamic = [...new Set(regexes.filter((r) => r.source === undefined).map((r) => r.file))];
  assert.deepEqual(dynamic.sort(), Object.keys(BUILT_AT_RUN_TIME).sort());
});

test('no regular expression in the code can take super-linear time', { timeout: 300_000 }, async () => {
  const vulnerable: string[] = [];
  for (const { file, line, source, flags } of regexes) {
    if (source === undefined) continue;
    const result = await check(source, flags ?? '', { timeout: 10_000 });
    if (result.status !== 'safe') {
      const why = result.status === 'vulnerable' ? result.complexity.summary : result.status;
      vulnerable.push(`${file}:${line} /${source}/${flags}: ${why}`);
    }
  }
  assert.deepEqual(vulnerable, []);
});
