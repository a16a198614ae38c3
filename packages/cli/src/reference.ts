// The configuration reference in Markdown, generated from the same flag table as the parser
// and `--help`, so the docs cannot describe flags that do not exist or defaults that changed.

import type { CommandSpec } from './command.js';
import { type FlagDefinition, formatDefault, formatRange } from './flag.js';
import { COMPATIBILITY_ONLY, flagMeaning, groupFlags, SYNTAX_NOTE } from './help.js';

/** Make text safe inside a table cell: pipes escaped, `<` outside code spans escaped. */
function cell(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replaceAll('<', '&lt;').replaceAll('>', '&gt;')))
    .join('`')
    .replaceAll('|', '\\|');
}

function typeCell(flag: FlagDefinition): string {
  if (flag.type === 'enum') return `one of ${flag.choices.map((c) => `\`${c}\``).join(', ')}`;
  const range = formatRange(flag);
  return range ? `${flag.type} (${cell(range)})` : flag.type;
}

function meaningCell(flag: FlagDefinition): string {
  const notes = [
    flag.extension ? ' *(gcfs addition)*' : '',
    flag.sensitive ? ' *(secret: never logged)*' : '',
  ];
  const meaning = flag.compatibility
    ? `**${COMPATIBILITY_ONLY}** (${flag.compatibility}): ${flag.description}`
    : flagMeaning(flag);
  return cell(meaning) + notes.join('');
}

/** One executable's section: a heading, the syntax, then a table of flags per group. */
export function renderFlagReference(spec: CommandSpec<readonly FlagDefinition[]>, headingLevel = 2): string {
  const hashes = '#'.repeat(headingLevel);
  const out = [`${hashes} ${spec.program}`, '', `${spec.summary}`, '', SYNTAX_NOTE];
  for (const [group, flags] of groupFlags(spec.flags)) {
    out.push(
      '',
      `${hashes}# ${group}`,
      '',
      '| Flag | Type | Default | Meaning |',
      '| --- | --- | --- | --- |',
    );
    for (const flag of flags) {
      const row = [`\`--${flag.name}\``, typeCell(flag), `\`${formatDefault(flag)}\``, meaningCell(flag)];
      out.push(`| ${row.map((c) => c.replaceAll('\n', ' ')).join(' | ')} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/**
 * docs/configuration.md: an introduction, then one section per executable, then sections
 * rendered elsewhere (`extra`: a command-line tool whose options are not a flag table).
 */
export function renderConfigurationDoc(
  sections: ReadonlyArray<CommandSpec<readonly FlagDefinition[]>>,
  extra: ReadonlyArray<{ program: string; markdown: string }> = [],
): string {
  const intro = [
    '# Configuration reference',
    '',
    '<!-- Generated from the flag tables (packages/*/src/flags.ts) by `npm run docs:gen`; do not edit. -->',
    '',
    'Every executable is configured by command-line flags only. An unknown flag or a bad value',
    'stops the executable with exit code 2 and one line on stderr naming the flag.',
    `Flags marked **${COMPATIBILITY_ONLY}** are accepted so that GKE's command lines run unchanged,`,
    'and do nothing here; the executable says at start, in one info line, which of them it was given.',
    `Sections: ${[...sections, ...extra].map((s) => `[${s.program}](#${s.program})`).join(', ')}.`,
  ].join('\n');
  return [intro, ...sections.map((spec) => renderFlagReference(spec)), ...extra.map((e) => e.markdown)].join(
    '\n\n',
  );
}
