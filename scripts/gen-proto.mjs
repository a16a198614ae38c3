#!/usr/bin/env node
// Generates TypeScript for every .proto under proto/ into packages/proto/src/gen with
// Debian's protoc and ts-proto. Skipped when neither the protos nor this script changed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, globSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const outDir = join(root, 'packages/proto/src/gen');
const stampFile = join(outDir, '.stamp');
const OPTIONS = [
  'outputServices=grpc-js',
  'env=node',
  'esModuleInterop=true',
  'importSuffix=.js',
  'forceLong=number',
  'useDate=false',
  'outputJsonMethods=false',
  'outputPartialMethods=true',
  'unrecognizedEnum=false',
  // Honour `[jstype = JS_STRING]` on the few 64-bit fields that exceed a number (CRI's timestamps).
  'useJsTypeOverride=true',
];

const files = globSync('**/*.proto', { cwd: protoDir }).sort();
const hash = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url)));
for (const file of files) hash.update(file).update(readFileSync(join(protoDir, file)));
const stamp = hash.digest('hex');
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) process.exit(0);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
execFileSync(
  'protoc',
  [
    `--plugin=protoc-gen-ts_proto=${join(root, 'node_modules/.bin/protoc-gen-ts_proto')}`,
    `--ts_proto_out=${outDir}`,
    `--ts_proto_opt=${OPTIONS.join(',')}`,
    `-I${protoDir}`,
    '-I/usr/include',
    ...files,
  ],
  { stdio: 'inherit', cwd: protoDir },
);
writeFileSync(stampFile, stamp);
