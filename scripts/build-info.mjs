#!/usr/bin/env node
// Stamps the version of gcfs into packages/core/dist/build-info.json for gcfsVersion():
// the root package.json's `version` (the one source of truth) and the git commit the
// build was made from. Installed copies (the container image) have no .git, so the commit
// is taken now; GCFS_COMMIT overrides it for a build from a tree without .git, and it is
// empty when neither says.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return '';
  }
}

const commit = process.env.GCFS_COMMIT ?? gitCommit();
const outDir = join(root, 'packages/core/dist');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'build-info.json'), `${JSON.stringify({ version, commit })}\n`);
