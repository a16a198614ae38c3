import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describeError } from './errors.js';
import { redact } from './redact.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
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

function wrap(instance: pino.Logger): Logger {
  const call = (level: LogLevel) => (msg: string, fields?: LogFields) => {
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
    isLevelEnabled: (level) => instance.isLevelEnabled(level),
  };
}

/** A logger writing logrus-compatible text (`time=… level=… msg=… module=…`) or JSON lines. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'text';
  const instance = pino(
    {
      level: options.level ?? 'info',
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    lineSink(format, options.destination ?? process.stderr),
  );
  return wrap(instance);
}
