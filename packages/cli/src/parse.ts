// Command-line parsing with Go's flag conventions on top of yargs. Node init scripts call
// gcfsd as `gcfsd -flag=value -flag value`, so single-dash long flags are accepted, a
// non-bool flag always takes the next argument as its value (even one starting with `-`),
// and a bool flag never does. Every token is rewritten to `--name=value` before yargs sees
// it, which leaves yargs nothing to guess; yargs then collects repeats and rejects strays.

import { checkLength, ErrorCode, GcfsError, Limits, quote } from '@gcfs/core';
import yargs from 'yargs';
import { DurationSyntaxError, parseDuration } from './duration.js';
import { checkValue, type FlagDefinition, type FlagValues } from './flag.js';

export type ParseResult<T extends readonly FlagDefinition[]> =
  | {
      action: 'run';
      values: FlagValues<T>;
      /** Flags given on the command line (the rest hold their defaults). */
      explicit: ReadonlySet<string>;
      /** The compatibility-only flags that were given (see FlagBase.compatibility). */
      compatibility: Array<{ flag: string; reason: string }>;
    }
  | { action: 'help' }
  | { action: 'version' };

function flagError(name: string, reason: string): GcfsError {
  return new GcfsError(ErrorCode.InvalidFlag, `invalid flag --${name}: ${reason}`, {
    details: { flag: name },
    hint: 'see --help for the flags and their values',
  });
}

type Normalized = { action: 'help' | 'version' } | { action: 'run'; tokens: string[] };

/** Rewrite every flag to `--name=value`, answering help/version and rejecting unknown flags. */
function normalize(flags: ReadonlyMap<string, FlagDefinition>, argv: readonly string[]): Normalized {
  const tokens: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') {
      const extra = argv[i + 1];
      if (extra === undefined) break;
      throw unexpected(extra);
    }
    if (!token.startsWith('-') || token === '-') throw unexpected(token);
    const body = token.slice(token.startsWith('--') ? 2 : 1);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === 'help' || name === 'h') return { action: 'help' };
    if (name === 'version') return { action: 'version' };
    const flag = flags.get(name);
    if (!flag) {
      throw new GcfsError(ErrorCode.InvalidFlag, `unknown flag --${name}`, {
        details: { flag: name },
        hint: 'see --help for the flags',
      });
    }
    let value = eq < 0 ? undefined : body.slice(eq + 1);
    if (value === undefined) {
      if (flag.type === 'bool') value = 'true';
      else if (i + 1 < argv.length) value = argv[++i] as string;
      else throw flagError(name, 'missing value');
    }
    checkLength(`flag --${name}`, value, Limits.flagValue, {
      code: ErrorCode.InvalidFlag,
      secret: flag.sensitive,
    });
    tokens.push(`--${name}=${value}`);
  }
  return { action: 'run', tokens };
}

function unexpected(token: string): GcfsError {
  return new GcfsError(ErrorCode.InvalidFlag, `unexpected argument ${quote(token)}`, {
    hint: 'this command takes flags only, written --name=value',
  });
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);
const INTEGER = /^[+-]?\d+$/;

/** Turn the text given for a flag into its typed value, or say why it cannot be. */
function convert(flag: FlagDefinition, raw: string): unknown {
  const shown = flag.sensitive ? 'the value' : quote(raw);
  switch (flag.type) {
    case 'bool':
      if (TRUE_WORDS.has(raw)) return true;
      if (FALSE_WORDS.has(raw)) return false;
      throw flagError(flag.name, `${shown} is not a boolean (use true or false)`);
    case 'int': {
      const n = Number(raw);
      if (!INTEGER.test(raw) || !Number.isSafeInteger(n)) {
        throw flagError(flag.name, `${shown} is not an integer`);
      }
      return n;
    }
    case 'duration':
      try {
        return parseDuration(raw);
      } catch (err) {
        if (!(err instanceof DurationSyntaxError)) throw err;
        throw flagError(flag.name, `${shown} is not a duration like 30m0s, 1s or 500ms: ${err.message}`);
      }
    case 'list':
      return raw === '' ? [] : raw.split(',');
    case 'string':
      return raw;
    case 'enum':
      // As logrus and most Go parsers of names: `--log_level=WARNING` is `warning`.
      return flag.choices.find((choice) => choice.toLowerCase() === raw.toLowerCase()) ?? raw;
  }
}

/** The raw text(s) yargs collected for one flag: scalars keep the last, lists keep all. */
function collect(flag: FlagDefinition, parsed: unknown): string[] {
  const all = (Array.isArray(parsed) ? parsed : [parsed]).map(String);
  return flag.type === 'list' ? all : all.slice(-1);
}

function runYargs(flags: readonly FlagDefinition[], tokens: string[]): Record<string, unknown> {
  const options = Object.fromEntries(
    flags.map((f) => [f.name, f.type === 'list' ? { type: 'array', string: true } : { type: 'string' }]),
  ) as Record<string, { type: 'array' | 'string'; string?: boolean }>;
  try {
    return yargs()
      .parserConfiguration({
        'camel-case-expansion': false,
        'dot-notation': false,
        'parse-numbers': false,
        'parse-positional-numbers': false,
        'boolean-negation': false,
        'short-option-groups': false,
        'duplicate-arguments-array': true,
        'flatten-duplicate-arrays': true,
      })
      .options(options)
      .strict()
      .help(false)
      .version(false)
      .exitProcess(false)
      .fail(false)
      .parseSync(tokens);
  } catch (err) {
    // normalize() already rejected unknown flags and strays; reaching here is a bug.
    throw new GcfsError(ErrorCode.Internal, 'command-line parser failed', { cause: err });
  }
}

/**
 * Parse argv (without node and script) against a flag table. Throws GcfsError
 * ERR_INVALID_FLAG naming the flag for an unknown flag or a bad value; the caller decides
 * how to report it and whether to exit.
 */
export function parseFlags<const T extends readonly FlagDefinition[]>(
  flags: T,
  argv: readonly string[],
): ParseResult<T> {
  const byName = new Map<string, FlagDefinition>(flags.map((f) => [f.name, f]));
  const normalized = normalize(byName, argv);
  if (normalized.action !== 'run') return normalized;

  const parsed = runYargs(flags, normalized.tokens);
  const values: Record<string, unknown> = {};
  const explicit = new Set<string>();
  const compatibility: Array<{ flag: string; reason: string }> = [];
  for (const flag of flags) {
    if (!(flag.name in parsed)) {
      values[flag.name] = flag.type === 'list' ? [...flag.default] : flag.default;
      continue;
    }
    const raws = collect(flag, parsed[flag.name]);
    const converted = raws.map((raw) => convert(flag, raw));
    const value = flag.type === 'list' ? (converted as string[][]).flat() : converted[0];
    const problem = checkValue(flag, value);
    if (problem !== undefined) {
      const shown = flag.sensitive ? 'the value' : JSON.stringify(raws.join(','));
      throw flagError(flag.name, `${shown} ${problem}`);
    }
    values[flag.name] = value;
    explicit.add(flag.name);
    if (flag.compatibility) compatibility.push({ flag: flag.name, reason: flag.compatibility });
  }
  return { action: 'run', values: values as FlagValues<T>, explicit, compatibility };
}
