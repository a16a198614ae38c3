// The version of gcfs, the same for every executable and package: the root package.json's
// `version` and the git commit it was built from, both stamped into dist/build-info.json by
// `npm run build` (scripts/build-info.mjs), since an installed copy (the container image)
// has no .git to ask.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode, GcfsError } from './errors.js';

export interface GcfsVersion {
  /** Semantic version, e.g. `0.1.0`. */
  version: string;
  /** Full git commit hash of the build, or '' when it was not built from a checkout. */
  commit: string;
}

// dist/src/version.js → dist/build-info.json
const BUILD_INFO = new URL('../build-info.json', import.meta.url);
let cached: GcfsVersion | undefined;

/** The build's version and commit; throws ERR_CONFIG when the build did not stamp them. */
export function gcfsVersion(): GcfsVersion {
  cached ??= readBuildInfo();
  return cached;
}

function readBuildInfo(): GcfsVersion {
  const path = fileURLToPath(BUILD_INFO);
  try {
    const { version, commit } = JSON.parse(readFileSync(path, 'utf8')) as Partial<GcfsVersion>;
    if (typeof version === 'string' && version !== '' && typeof commit === 'string')
      return { version, commit };
  } catch (err) {
    throw new GcfsError(ErrorCode.Config, `cannot read the build info ${path}`, {
      cause: err,
      hint: 'build with `npm run build`, which writes it',
    });
  }
  throw new GcfsError(ErrorCode.Config, `the build info ${path} has no version`, {
    hint: 'build with `npm run build`, which writes it',
  });
}

/** `0.1.0 (commit <hash>)`, or the version alone when the commit is unknown: what --version prints. */
export function describeVersion(v: GcfsVersion = gcfsVersion()): string {
  return v.commit === '' ? v.version : `${v.version} (commit ${v.commit})`;
}
