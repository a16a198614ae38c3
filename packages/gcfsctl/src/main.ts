// The gcfsctl executable (bin/gcfsctl runs it on the project's Node 24).

import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2), process);
