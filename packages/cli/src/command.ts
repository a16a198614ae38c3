// What an executable declares about itself, and the one call that turns argv into its
// configuration or into an exit code: help and version go to stdout (exit 0), a bad
// command line to stderr as one line (exit 2, as Go's flag package does).

import { isGcfsError } from '@gcfs/core';
import { formatDuration } from './duration.js';
import type { FlagDefinition, FlagValues } from './flag.js';
import { formatHelp } from './help.js';
import { parseFlags } from './parse.js';

export interface CommandSpec<T extends readonly FlagDefinition[]> {
  /** The executable's name, as typed: `gcfsd`. */
  program: string;
  version: string;
  /** One sentence: what the executable is. */
  summary: string;
  flags: T;
}

export interface CommandLine<T extends readonly FlagDefinition[]> {
  values: FlagValues<T>;
  explicit: ReadonlySet<string>;
  compatibility: Array<{ flag: string; reason: string }>;
}

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Exit code for a command line that cannot be parsed (Go's flag package uses 2 as well). */
export const EXIT_USAGE = 2;

/**
 * Parse argv for an executable. Returns the configuration to run with, or the exit code
 * to leave with after help, version or a usage error has been written.
 */
export function resolveCommandLine<const T extends readonly FlagDefinition[]>(
  spec: CommandSpec<T>,
  argv: readonly string[],
  io: CommandIo = { stdout: process.stdout, stderr: process.stderr },
): CommandLine<T> | { exitCode: number } {
  try {
    const result = parseFlags(spec.flags, argv);
    switch (result.action) {
      case 'help':
        io.stdout.write(formatHelp(spec));
        return { exitCode: 0 };
      case 'version':
        io.stdout.write(`${spec.program} ${spec.version}\n`);
        return { exitCode: 0 };
      case 'run':
        return result;
    }
  } catch (err) {
    if (!isGcfsError(err, 'ERR_INVALID_FLAG')) throw err;
    io.stderr.write(`${spec.program}: ${err.message.replaceAll('\n', ' ')}\n`);
    return { exitCode: EXIT_USAGE };
  }
}

/**
 * The one start-up line about compatibility-only flags that were given (GKE's command line
 * has one), or undefined when none was.
 */
export function compatibilityNotice(
  commandLine: Pick<CommandLine<never>, 'compatibility'>,
): string | undefined {
  if (commandLine.compatibility.length === 0) return undefined;
  const flags = commandLine.compatibility.map(({ flag, reason }) => `--${flag} (${reason})`);
  return `Flags accepted for compatibility, without effect: ${flags.join('; ')}`;
}

/** Parsed values as log fields: sensitive values replaced, durations in Go form. */
export function loggableValues(
  flags: readonly FlagDefinition[],
  values: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const flag of flags) {
    const value = values[flag.name];
    if (flag.sensitive && value !== '') fields[flag.name] = '(redacted)';
    else if (flag.type === 'duration') fields[flag.name] = formatDuration(value as number);
    else fields[flag.name] = value;
  }
  return fields;
}
