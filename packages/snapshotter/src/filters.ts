// containerd's filter syntax (github.com/containerd/containerd/filters), the subset its
// clients send to snapshotters: `field`, `field==value`, `field!=value`, `field~=regexp`;
// a field path is dot-separated, each part a name or a quoted string
// (`labels."containerd.io/gc.root"`); values are bare (up to the next comma) or quoted.
// Selectors joined by commas must all match; any one of several filters matching is enough.
// A `~=` pattern is compiled by re2js, a port of RE2: the Go syntax and linear-time
// matching containerd itself has, so a client's pattern cannot make a match backtrack.

import { checkLength, ErrorCode, GcfsError, Limits, quote } from '@gcfs/core';
import { RE2JS } from 're2js';

type Operator = 'present' | '==' | '!=' | '~=';

interface Selector {
  path: string[];
  operator: Operator;
  value: string;
  regexp?: RE2JS;
}

/** A parsed filter: a list of alternatives, each a list of selectors that must all hold. */
export type Filter = Selector[][];

/** Looks a field path up in the thing filtered; undefined when it has no such field. */
export type FieldLookup = (path: readonly string[]) => string | undefined;

const QUOTES = new Set(['"', "'", '/']);
const NAME = /[A-Za-z0-9_-]/;

class Scanner {
  #pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.#pos >= this.text.length;
  }
  peek(length = 1): string {
    return this.text.slice(this.#pos, this.#pos + length);
  }
  skip(length = 1): void {
    this.#pos += length;
  }
  skipSpace(): void {
    while (!this.done && /\s/.test(this.peek())) this.#pos++;
  }
  fail(what: string): never {
    throw new GcfsError(
      ErrorCode.InvalidArgument,
      `invalid filter ${quote(this.text)}: ${what} at ${this.#pos}`,
    );
  }

  /** A quoted string, with backslash escapes (the quote itself, backslash, \n, \t). */
  quoted(): string {
    const quote = this.peek();
    this.skip();
    let out = '';
    for (;;) {
      if (this.done) this.fail('unterminated quoted string');
      const c = this.peek();
      this.skip();
      if (c === quote) return out;
      if (c === '\\') {
        const next = this.peek();
        this.skip();
        out += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      } else {
        out += c;
      }
    }
  }

  fieldPart(): string {
    if (QUOTES.has(this.peek())) return this.quoted();
    let out = '';
    while (!this.done && NAME.test(this.peek())) {
      out += this.peek();
      this.skip();
    }
    if (out === '') this.fail('expected a field name');
    return out;
  }

  value(): string {
    this.skipSpace();
    if (QUOTES.has(this.peek())) return this.quoted();
    let out = '';
    while (!this.done && this.peek() !== ',') {
      out += this.peek();
      this.skip();
    }
    return out.trim();
  }
}

function parseSelector(scanner: Scanner): Selector {
  scanner.skipSpace();
  const path = [scanner.fieldPart()];
  while (scanner.peek() === '.') {
    scanner.skip();
    path.push(scanner.fieldPart());
  }
  scanner.skipSpace();
  const op = scanner.peek(2);
  if (op !== '==' && op !== '!=' && op !== '~=') return { path, operator: 'present', value: '' };
  scanner.skip(2);
  const value = scanner.value();
  if (op !== '~=') return { path, operator: op, value };
  try {
    return { path, operator: op, value, regexp: RE2JS.compile(value) };
  } catch (err) {
    throw new GcfsError(ErrorCode.InvalidArgument, `invalid regular expression in filter: ${quote(value)}`, {
      cause: err,
    });
  }
}

function parseOne(text: string): Selector[] {
  const scanner = new Scanner(text);
  const selectors = [parseSelector(scanner)];
  for (;;) {
    scanner.skipSpace();
    if (scanner.done) return selectors;
    if (scanner.peek() !== ',') scanner.fail('expected a comma');
    scanner.skip();
    selectors.push(parseSelector(scanner));
  }
}

/** Parse containerd filter strings; empty strings are ignored, no filters match everything. */
export function parseFilters(filters: readonly string[]): Filter {
  return filters
    .map((text) => checkLength('filter', text, Limits.label))
    .filter((text) => text.trim() !== '')
    .map(parseOne);
}

function matchesSelector(selector: Selector, lookup: FieldLookup): boolean {
  const actual = lookup(selector.path);
  switch (selector.operator) {
    case 'present':
      return actual !== undefined;
    case '==':
      return actual === selector.value;
    case '!=':
      return actual !== selector.value;
    case '~=':
      return actual !== undefined && selector.regexp!.test(actual);
  }
}

export function matchesFilter(filter: Filter, lookup: FieldLookup): boolean {
  if (filter.length === 0) return true;
  return filter.some((selectors) => selectors.every((selector) => matchesSelector(selector, lookup)));
}
