#!/usr/bin/env node
// Runs every compiled test file with node's own test runner.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { cpus } from 'node:os';

const filters = process.argv.slice(2);
const files = globSync(['packages/*/dist/test/**/*.test.js', 'test/dist/**/*.test.js'])
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error('no test files found: did the build run?');
  process.exit(1);
}
const concurrency = Math.max(2, cpus().length);
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
