import { execFile } from 'node:child_process';
import { ErrorCode, GcfsError } from '@gcfs/core';

/**
 * curl as the HTTP client of testkit's own checks and tests: the project's registry client is
 * the only HTTP client code in gcfs, and testkit must not depend on it.
 */
export interface CurlResult {
  status: number;
  /** Response headers of the last response, names lower-cased; repeated headers joined by ', '. */
  headers: Record<string, string>;
  body: Buffer;
}

// Appended after the body by -w: the final status and headers (curl >= 7.83 has header_json).
const TRAILER_MARK = '\n__gcfs_curl_trailer__:';

export interface CurlOptions {
  timeoutMs?: number;
  /** Bytes for curl's stdin, e.g. with `--data-binary @-`. */
  input?: Uint8Array;
}

/** Run `curl -sS <args>` and return the final status, headers and body. Throws if curl fails. */
export function curl(
  args: readonly string[],
  { timeoutMs = 30_000, input }: CurlOptions = {},
): Promise<CurlResult> {
  const full = ['-sS', '-w', `${TRAILER_MARK}%{http_code}\n%{header_json}`, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      'curl',
      ['--max-time', String(Math.ceil(timeoutMs / 1000)), ...full],
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new GcfsError(ErrorCode.Internal, `curl ${args.join(' ')} failed: ${stderr.toString().trim()}`, {
              cause: err,
            }),
          );
          return;
        }
        const mark = stdout.lastIndexOf(TRAILER_MARK);
        const trailer = stdout.subarray(mark + TRAILER_MARK.length).toString('latin1');
        const newline = trailer.indexOf('\n');
        resolve({
          status: Number(trailer.slice(0, newline)),
          headers: joinHeaders(JSON.parse(trailer.slice(newline + 1)) as Record<string, string[]>),
          body: stdout.subarray(0, mark),
        });
      },
    );
    child.stdin?.end(input);
  });
}

function joinHeaders(json: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(json).map(([name, values]) => [name.toLowerCase(), values.join(', ')]),
  );
}
