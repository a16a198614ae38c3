// `--help` in the style of Go's flag package as gcfsd prints it (`-name=default: meaning`),
// one line per flag so that it stays greppable, with the type added and flags grouped.

import type { CommandSpec } from './command.js';
import { type FlagDefinition, formatDefault, formatType } from './flag.js';

const UNGROUPED = 'Flags';

/** Flags by section, sections in table order, flags sorted by name within a section. */
export function groupFlags(flags: readonly FlagDefinition[]): Array<[string, FlagDefinition[]]> {
  const groups = new Map<string, FlagDefinition[]>();
  for (const flag of flags) {
    const group = flag.group ?? UNGROUPED;
    const members = groups.get(group) ?? [];
    members.push(flag);
    groups.set(group, members);
  }
  return [...groups].map(([group, members]) => [group, members.sort((a, b) => a.name.localeCompare(b.name))]);
}

/** The meaning of a flag, a compatibility-only flag's note in front, as one line. */
export function flagMeaning(flag: FlagDefinition): string {
  return flag.compatibility
    ? `${COMPATIBILITY_ONLY} (${flag.compatibility}): ${flag.description}`
    : flag.description;
}

export const COMPATIBILITY_ONLY = 'Compatibility only, no effect';

export const SYNTAX_NOTE =
  'Flags are written -name=value, -name value, --name=value or --name value; a bool flag alone means true. ' +
  'Durations use Go syntax (1h30m, 30m0s, 1s, 500ms; 0 disables where stated).';

export function formatHelp(spec: CommandSpec<readonly FlagDefinition[]>): string {
  const lines = [`Usage of ${spec.program}:`, `${spec.program}: ${spec.summary}`, SYNTAX_NOTE];
  for (const [group, flags] of groupFlags(spec.flags)) {
    lines.push('', `${group}:`);
    for (const flag of flags) {
      lines.push(`  -${flag.name}=${formatDefault(flag)} (${formatType(flag)}): ${flagMeaning(flag)}`);
    }
  }
  lines.push('', 'Other:', '  -help: Print this help and exit', '  -version: Print the version and exit');
  return `${lines.join('\n')}\n`;
}
