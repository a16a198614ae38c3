// A flag table is the single source of truth for an executable's command line: the parser,
// `--help` and the generated configuration reference all read the same definitions.

import { formatDuration } from './duration.js';

/** Returns why a value is unacceptable (a phrase like `must be ...`), or undefined when it is fine. */
export type Validator<T> = (value: T) => string | undefined;

interface FlagBase<T> {
  /** snake_case, written `--name` on the command line. */
  name: string;
  description: string;
  /**
   * Set when the flag is accepted only so that GKE's command lines run unchanged and has no
   * effect here: why (and what to use instead, if anything). gcfsd says so at start when one
   * is given; `--help` and docs/configuration.md say so always.
   */
  compatibility?: string;
  /** Section in `--help` and in the docs. */
  group?: string;
  /** The value is a credential: never logged, never shown. */
  sensitive?: boolean;
  /** Not a flag of the executable we mirror (GKE's gcfsd): added by this project. */
  extension?: boolean;
  validate?: Validator<T>;
}

export interface BoolFlag extends FlagBase<boolean> {
  type: 'bool';
  default: boolean;
}

export interface StringFlag extends FlagBase<string> {
  type: 'string';
  default: string;
}

export interface IntFlag extends FlagBase<number> {
  type: 'int';
  default: number;
  min?: number;
  max?: number;
}

/** Values and bounds in milliseconds; written in Go duration syntax. */
export interface DurationFlag extends FlagBase<number> {
  type: 'duration';
  default: number;
  min?: number;
  max?: number;
}

export interface EnumFlag extends FlagBase<string> {
  type: 'enum';
  choices: readonly string[];
  default: string;
}

/** Repeat the flag or separate items with commas: `--x=a,b --x=c` gives [a, b, c]. */
export interface ListFlag extends FlagBase<readonly string[]> {
  type: 'list';
  default: readonly string[];
}

export type FlagDefinition = BoolFlag | StringFlag | IntFlag | DurationFlag | EnumFlag | ListFlag;
export type FlagType = FlagDefinition['type'];

/** The parsed type of one flag. */
export type FlagValue<F extends FlagDefinition> = F extends { type: 'bool' }
  ? boolean
  : F extends { type: 'int' | 'duration' }
    ? number
    : F extends { type: 'enum'; choices: readonly (infer C extends string)[] }
      ? C
      : F extends { type: 'list' }
        ? string[]
        : string;

/** The parsed configuration: one property per flag, keyed by the flag's own name. */
export type FlagValues<T extends readonly FlagDefinition[]> = {
  -readonly [F in T[number] as F['name']]: FlagValue<F>;
};

const FLAG_NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
/** Names the parser itself answers; a table cannot redefine them. */
export const BUILTIN_FLAGS = ['help', 'version'] as const;

/**
 * Declare a flag table. The `const` type parameter keeps names and choices literal so that
 * FlagValues gives a precise type; the checks catch mistakes in the table when it loads.
 */
export function defineFlags<const T extends readonly FlagDefinition[]>(flags: T): T {
  const seen = new Set<string>(BUILTIN_FLAGS);
  for (const flag of flags) {
    if (!FLAG_NAME.test(flag.name)) throw new Error(`flag name "${flag.name}" is not snake_case`);
    if (seen.has(flag.name)) throw new Error(`flag "${flag.name}" is defined twice or is built in`);
    seen.add(flag.name);
    const problem = checkValue(flag, flag.default);
    if (problem !== undefined) throw new Error(`default of flag "${flag.name}" is invalid: ${problem}`);
  }
  return flags;
}

/** A number as the user writes it for this flag: durations in Go form. */
function showNumber(flag: IntFlag | DurationFlag, n: number): string {
  return flag.type === 'duration' ? formatDuration(n) : String(n);
}

function checkRange(flag: IntFlag | DurationFlag, value: number): string | undefined {
  if (flag.min !== undefined && value < flag.min) return `must be at least ${showNumber(flag, flag.min)}`;
  if (flag.max !== undefined && value > flag.max) return `must be at most ${showNumber(flag, flag.max)}`;
  return undefined;
}

/** Why a converted value is not acceptable for this flag (range, choices, custom rule). */
export function checkValue(flag: FlagDefinition, value: unknown): string | undefined {
  switch (flag.type) {
    case 'int':
    case 'duration': {
      const problem = checkRange(flag, value as number);
      return problem ?? flag.validate?.(value as number);
    }
    case 'enum':
      if (!flag.choices.includes(value as string)) return `must be one of ${flag.choices.join(', ')}`;
      return flag.validate?.(value as string);
    case 'bool':
      return flag.validate?.(value as boolean);
    case 'list':
      return flag.validate?.(value as readonly string[]);
    case 'string':
      return flag.validate?.(value as string);
  }
}

/** A flag's default as shown in `--help` and the docs, Go style: strings quoted. */
export function formatDefault(flag: FlagDefinition): string {
  switch (flag.type) {
    case 'bool':
    case 'int':
      return String(flag.default);
    case 'duration':
      return formatDuration(flag.default);
    case 'list':
      return JSON.stringify(flag.default.join(','));
    case 'string':
    case 'enum':
      return JSON.stringify(flag.default);
  }
}

/** The accepted range of an int or duration flag (`min 1`, `0..65535`), or '' when unbounded. */
export function formatRange(flag: FlagDefinition): string {
  if (flag.type !== 'int' && flag.type !== 'duration') return '';
  const { min, max } = flag;
  if (min !== undefined && max !== undefined) return `${showNumber(flag, min)}..${showNumber(flag, max)}`;
  if (min !== undefined) return `min ${showNumber(flag, min)}`;
  if (max !== undefined) return `max ${showNumber(flag, max)}`;
  return '';
}

/** The flag's type as shown in `--help`: an enum lists its choices, a bounded number its range. */
export function formatType(flag: FlagDefinition): string {
  if (flag.type === 'enum') return flag.choices.join('|');
  const range = formatRange(flag);
  return range ? `${flag.type}, ${range}` : flag.type;
}

/** Validator for path flags: empty (not set) or absolute, since daemons must not depend on cwd. */
export const emptyOrAbsolutePath: Validator<string> = (value) =>
  value === '' || value.startsWith('/') ? undefined : 'must be an absolute path';

/** Validator for path flags that must be set: absolute. */
export const absolutePath: Validator<string> = (value) =>
  value.startsWith('/') ? undefined : 'must be an absolute path';
