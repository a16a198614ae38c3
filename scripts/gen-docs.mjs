#!/usr/bin/env node
// `npm run docs:gen`: writes docs/configuration.md from the executables' flag tables.
// With --check, writes nothing and exits 1 when the file differs (the test suite runs this).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CFSD_COMMAND } from '@gcfs/cfsd';
import { renderConfigurationDoc } from '@gcfs/cli';
import { renderGcfsctlReference } from '@gcfs/gcfsctl';
import { GCFSD_COMMAND } from '@gcfs/gcfsd';

const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');
const wanted = renderConfigurationDoc(
  [GCFSD_COMMAND, CFSD_COMMAND],
  [{ program: 'gcfsctl', markdown: renderGcfsctlReference() }],
);
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // a missing file is out of date too
  }
  if (current !== wanted) {
    console.error(`${path} is out of date: run \`npm run docs:gen\``);
    process.exit(1);
  }
} else {
  writeFileSync(path, wanted);
  console.log(`wrote ${path}`);
}
