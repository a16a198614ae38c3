// `npm run docs:gen`: regenerate docs/configuration.md from the flag tables.
// (The gcfsd tests fail when the committed file differs from what this writes.)

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIGURATION_DOC, renderConfigurationDoc } from './docs.js';

const path = fileURLToPath(CONFIGURATION_DOC);
writeFileSync(path, renderConfigurationDoc());
process.stdout.write(`wrote ${path}\n`);
