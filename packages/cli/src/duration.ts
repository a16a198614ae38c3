// Durations are written as Go's time.ParseDuration accepts them (`30m0s`, `1h30m`, `500ms`,
// `0`) because gcfsd's flags and node init scripts use that syntax. They are stored as whole
// milliseconds: every timer in the project works in milliseconds, and a sub-millisecond
// value would silently round to 0, which for some flags means "disabled".

const NS_PER_MS = 1_000_000n;
// Go's time.Duration is an int64 count of nanoseconds.
const MAX_NS = (1n << 63n) - 1n;

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: NS_PER_MS,
  s: 1_000n * NS_PER_MS,
  m: 60_000n * NS_PER_MS,
  h: 3_600_000n * NS_PER_MS,
};

// One `<number><unit>` component: digits, an optional fraction, then the unit letters.
const COMPONENT = /^(\d*)(?:\.(\d*))?([^\d.]+)/;

/** Thrown for text that is not a Go duration; the message is the reason, without the input. */
export class DurationSyntaxError extends Error {
  override name = 'DurationSyntaxError';
}

/** Parse a Go duration (`1h30m`, `1.5s`, `-2m`, `0`) into milliseconds. */
export function parseDuration(text: string): number {
  let rest = text;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new DurationSyntaxError('empty duration');

  let totalNs = 0n;
  while (rest !== '') {
    const match = COMPONENT.exec(rest);
    const [whole = '', intDigits = '', fracDigits = '', unit = ''] = match ?? [];
    if (!match || (intDigits === '' && fracDigits === '')) {
      throw new DurationSyntaxError('expected a number followed by a unit (h, m, s, ms, us, ns)');
    }
    const unitNs = UNIT_NS[unit];
    if (unitNs === undefined) {
      throw new DurationSyntaxError(`unknown unit "${unit}" (use h, m, s, ms, us or ns)`);
    }
    totalNs += BigInt(intDigits || '0') * unitNs;
    if (fracDigits !== '') totalNs += (BigInt(fracDigits) * unitNs) / 10n ** BigInt(fracDigits.length);
    if (totalNs > MAX_NS) throw new DurationSyntaxError('duration out of range');
    rest = rest.slice(whole.length);
  }
  if (totalNs % NS_PER_MS !== 0n) {
    throw new DurationSyntaxError('durations must be a whole number of milliseconds');
  }
  return Number((sign * totalNs) / NS_PER_MS);
}

/** Render milliseconds the way Go's Duration.String() does: `30m0s`, `1.5s`, `500ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`not a whole number of milliseconds: ${ms}`);
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${abs}ms`;

  const hours = Math.floor(abs / 3_600_000);
  const minutes = Math.floor((abs % 3_600_000) / 60_000);
  const millis = abs % 60_000;
  const fraction = String(millis % 1000)
    .padStart(3, '0')
    // (?<!0): only the first of a run of zeros starts a match, so the scan stays linear.
    .replace(/(?<!0)0+$/, '');
  const seconds = `${Math.floor(millis / 1000)}${fraction ? `.${fraction}` : ''}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}
