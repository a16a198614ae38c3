// docs/configuration.md, generated from the flag tables: one section per executable.
// cfsd's section joins DOC_SECTIONS when cfsd exists.

import { type CommandSpec, type FlagDefinition, renderFlagReference } from '@gcfs/cli';
import { GCFSD_COMMAND } from './flags.js';

export const DOC_SECTIONS: ReadonlyArray<CommandSpec<readonly FlagDefinition[]>> = [GCFSD_COMMAND];

/** Path of the generated file, from dist/src/docs.js up to the repository root. */
export const CONFIGURATION_DOC = new URL('../../../../docs/configuration.md', import.meta.url);

export function renderConfigurationDoc(): string {
  const intro = [
    '# Configuration reference',
    '',
    '<!-- Generated from the flag tables (packages/*/src/flags.ts) by `npm run docs:gen`; do not edit. -->',
    '',
    'Every executable is configured by command-line flags only. An unknown flag or a bad value',
    'stops the executable with exit code 2 and one line on stderr naming the flag.',
    `Sections: ${DOC_SECTIONS.map((s) => `[${s.program}](#${s.program})`).join(', ')}.`,
  ].join('\n');
  return [intro, ...DOC_SECTIONS.map((spec) => renderFlagReference(spec))].join('\n\n');
}
