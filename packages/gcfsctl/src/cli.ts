// gcfsctl's command line: yargs parses it from the declarations in spec.ts, then one command
// runs against gcfsd's admin socket. Exit codes: 0 done, 1 failed (or status: needs
// attention), 2 a bad command line. Errors go to stderr with the fix (as JSON with --json).

import { DurationSyntaxError, EXIT_USAGE, parseDuration } from '@gcfs/cli';
import { describeError, ErrorCode, GcfsError, isGcfsError } from '@gcfs/core';
import yargs, { type Argv } from 'yargs';
import * as run from './commands.js';
import { connectAdmin, explainCallError, socketPathOf } from './connect.js';
import { COMMANDS, type CommandName, GLOBAL_OPTIONS, SUMMARY, VERSION } from './spec.js';
import { wait } from './wait.js';

export interface Io {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
}

const EXIT_FAILED = 1;

interface Parsed {
  _: Array<string | number>;
  help?: boolean;
  version?: boolean;
  json: boolean;
  socket?: string;
  mount_point: string;
  image?: string;
  timeout?: string;
}

function parser(): Argv {
  let y = yargs()
    .scriptName('gcfsctl')
    .usage(`$0 <command> [options]\n\n${SUMMARY}`)
    .options(GLOBAL_OPTIONS)
    .parserConfiguration({ 'camel-case-expansion': false })
    .demandCommand(1, 'give a command')
    .recommendCommands()
    .strict()
    .help()
    .version(`gcfsctl ${VERSION}`)
    .wrap(null)
    .exitProcess(false);
  for (const spec of COMMANDS) {
    y = y.command(spec.command, spec.describe, (sub) => {
      for (const [name, options] of Object.entries('positionals' in spec ? spec.positionals : {})) {
        sub.positional(name, options);
      }
      return sub.options('options' in spec ? spec.options : {});
    });
  }
  return y;
}

function timeoutOf(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    if (!(err instanceof DurationSyntaxError)) throw err;
    throw new GcfsError(ErrorCode.InvalidFlag, `invalid --timeout ${JSON.stringify(text)}: ${err.message}`, {
      hint: 'a Go duration such as 90s, 10m or 1h',
    });
  }
}

function reportError(io: Io, json: boolean, err: GcfsError): void {
  if (json) {
    const error = { code: err.code, message: err.message, ...(err.hint && { hint: err.hint }) };
    io.stderr.write(`${JSON.stringify({ error })}\n`);
    return;
  }
  io.stderr.write(`gcfsctl: ${err.message}\n`);
  if (err.hint) io.stderr.write(`  fix: ${err.hint}\n`);
}

/** Run gcfsctl with `argv` (without node and script); its exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  let usage: string | undefined;
  let printed = '';
  const args = (await parser()
    .fail((message, err) => {
      usage = message ?? describeError(err);
    })
    .parseAsync([...argv], {}, (_err, _argv, output) => {
      printed = output;
    })) as unknown as Parsed;
  if (usage !== undefined) {
    io.stderr.write(`gcfsctl: ${usage}\n  fix: see gcfsctl --help\n`);
    return EXIT_USAGE;
  }
  if (args.help || args.version) {
    io.stdout.write(`${printed}\n`);
    return 0;
  }
  const command = String(args._[0]) as CommandName;
  const path = socketPathOf(args);
  const out: run.Output = { json: args.json, write: (text) => io.stdout.write(text) };
  let admin: Awaited<ReturnType<typeof connectAdmin>> | undefined;
  try {
    const timeoutMs = command === 'wait' ? timeoutOf(args.timeout ?? '') : 0;
    admin = await connectAdmin(path);
    try {
      switch (command) {
        case 'status':
          return await run.status(admin, out);
        case 'images':
          return await run.images(admin, out);
        case 'layers':
          return await run.layers(admin, out, args.image);
        case 'gc':
          return await run.gc(admin, out);
        case 'unregister':
          return await run.unregister(admin, out, args.image!);
        case 'wait':
          return await wait(admin, out, { image: args.image!, timeoutMs, tty: io.stdout.isTTY === true });
        default:
          throw new GcfsError(ErrorCode.Internal, `no runner for command ${command}`);
      }
    } catch (err) {
      throw explainCallError(path, err);
    }
  } catch (err) {
    const error = isGcfsError(err)
      ? err
      : new GcfsError(ErrorCode.Internal, describeError(err), { cause: err });
    reportError(io, args.json, error);
    return error.code === ErrorCode.InvalidFlag ? EXIT_USAGE : EXIT_FAILED;
  } finally {
    admin?.close();
  }
}
