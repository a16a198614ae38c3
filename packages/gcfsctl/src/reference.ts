// gcfsctl's section of docs/configuration.md, rendered from the same declarations as the
// parser and --help (spec.ts), so the docs cannot drift from the command line.

import type { Options } from 'yargs';
import { COMMANDS, GLOBAL_OPTIONS, SUMMARY } from './spec.js';

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function optionRow(name: string, option: Options, scope: string): string {
  const fallback = option.defaultDescription ?? (option.default === undefined ? '' : String(option.default));
  const meaning = scope === '' ? option.describe : `(${scope}) ${option.describe}`;
  return `| \`--${name}\` | ${option.type} | ${fallback === '' ? '' : `\`${fallback}\``} | ${cell(String(meaning))} |`;
}

/** The `## gcfsctl` section: its commands, then every option with its default. */
export function renderGcfsctlReference(): string {
  const out = [
    '## gcfsctl',
    '',
    `${SUMMARY} Run \`gcfsctl <command> [options]\` as root on the node (\`npx gcfsctl\` in a checkout);`,
    'exit codes: 0 done, 1 failed (`status`: the node needs attention), 2 a bad command line.',
    '',
    '### Commands',
    '',
    '| Command | What it does |',
    '| --- | --- |',
    ...COMMANDS.map((spec) => `| \`gcfsctl ${spec.command}\` | ${cell(spec.describe)} |`),
    '',
    '### Options',
    '',
    '| Option | Type | Default | Meaning |',
    '| --- | --- | --- | --- |',
    ...Object.entries(GLOBAL_OPTIONS).map(([name, option]) => optionRow(name, option, '')),
    ...COMMANDS.flatMap((spec) =>
      Object.entries('options' in spec ? spec.options : {}).map(([name, option]) =>
        optionRow(name, option, spec.command.split(' ')[0]!),
      ),
    ),
  ];
  return `${out.join('\n')}\n`;
}
