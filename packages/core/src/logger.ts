import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describeError } from './errors.js';
import { redact } from './redact.js';

/** What --log_level accepts: logrus's level names (ParseLevel takes `warn` for `warning` too). */
export const LOG_LEVELS = ['panic', 'fatal', 'error', 'warning', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Record<string, unknown>;

/** The logging surface every daemon uses; libraries emit events and never log. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stderr. */
  destination?: NodeJS.WritableStream;
}

// logrus quotes a value unless every character is in this set.
const BARE_VALUE = /^[A-Za-z0-9\-._/@^+]+$/;

function logrusValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text !== undefined && BARE_VALUE.test(text)) return text;
  return JSON.stringify(text ?? String(value));
}

/** Turn one pino JSON record into a logrus text line: time, level, msg, then sorted fields. */
export function formatLogrusText(record: Record<string, unknown>): string {
  const { time, level, msg, ...fields } = record;
  const parts = [`time=${logrusValue(time)}`, `level=${logrusValue(level)}`, `msg=${logrusValue(msg ?? '')}`];
  for (const key of Object.keys(fields).sort()) parts.push(`${key}=${logrusValue(fields[key])}`);
  return `${parts.join(' ')}\n`;
}

function errorFields(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return fields;
  let out: LogFields | undefined;
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      out ??= { ...fields };
      out[key] = describeError(value);
    }
  }
  return out ?? fields;
}

function lineSink(format: LogFormat, destination: NodeJS.WritableStream): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      const line = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const safe = redact(line);
      destination.write(format === 'json' ? safe : formatLogrusText(JSON.parse(safe)));
      callback();
    },
  });
}

// pino's names for logrus's levels; logrus's `panic` is one above fatal.
type PinoLevel = 'panic' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
const PINO_LEVELS = { panic: 70 };

function pinoLevel(level: LogLevel): PinoLevel {
  return level === 'warning' ? 'warn' : level;
}

/** The level's name in a line, as logrus prints it: `warning` where pino says `warn`. */
function logrusLevel(label: string): string {
  return label === 'warn' ? 'warning' : label;
}

function wrap(instance: pino.Logger<'panic'>): Logger {
  const call = (level: PinoLevel) => (msg: string, fields?: LogFields) => {
    const extra = errorFields(fields);
    if (extra) instance[level](extra, msg);
    else instance[level](msg);
  };
  return {
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    fatal: call('fatal'),
    child: (fields) => wrap(instance.child(fields)),
    isLevelEnabled: (level) => instance.isLevelEnabled(pinoLevel(level)),
  };
}

/**
 * A logger writing logrus-compatible text (`time=… level=… msg=… module=…`) or JSON lines,
 * levels named as logrus names them (`warning`, not `warn`).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'text';
  const instance = pino(
    {
      level: pinoLevel(options.level ?? 'info'),
      customLevels: PINO_LEVELS,
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: logrusLevel(label) }) },
    },
    lineSink(format, options.destination ?? process.stderr),
  );
  return wrap(instance);
}
