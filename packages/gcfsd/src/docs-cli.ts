// `npm run docs:gen`: write docs/configuration.md, or with --check exit 1 when it is stale.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIGURATION_DOC, renderConfigurationDoc } from './docs.js';

const path = fileURLToPath(CONFIGURATION_DOC);
const expected = renderConfigurationDoc();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // a missing file is stale like any other
  }
  if (current !== expected) {
    process.stderr.write(`${path} is out of date: run \`npm run docs:gen\`\n`);
    process.exitCode = 1;
  }
} else if (process.argv.includes('--write')) {
  writeFileSync(path, expected);
  process.stdout.write(`wrote ${path}\n`);
} else {
  process.stdout.write(expected);
}
