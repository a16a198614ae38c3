// Builds gcfs's container image from a clean checkout of this repository (scripts/image/),
// then pushes it to a registry and/or writes it as an OCI layout directory. Prints the layers'
// sizes; with --json, a description of the image on stdout (logs go to stderr).
// Usage: scripts/build-image [--push HOST[:PORT]/REPO[:TAG]] [--insecure] [--oci-layout DIR]
//                            [--refresh-debian] [--json]
// The tag defaults to the version (package.json). Loopback registries are reached over plain
// HTTP; others over HTTPS unless --insecure. Credentials come from the Docker config
// (~/.docker/config.json, $DOCKER_CONFIG), as `docker login` writes them.
import { cp, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, describeError, ErrorCode, GcfsError } from '@gcfs/core';
import { pushImage } from '@gcfs/image-builder';
import { CredentialStore, parseReference, RegistryClient } from '@gcfs/registry';
import { buildGcfsImage } from './image/gcfs-image.mjs';

const USAGE =
  'usage: scripts/build-image [--push HOST[:PORT]/REPO[:TAG]] [--insecure] [--oci-layout DIR] [--refresh-debian] [--json]';
const MB = 1e6;
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/;

const log = createLogger({ level: 'info' }).child({ module: 'build-image' });

function parse() {
  try {
    return parseArgs({
      options: {
        push: { type: 'string' },
        insecure: { type: 'boolean', default: false },
        'oci-layout': { type: 'string' },
        'refresh-debian': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
}

/** `HOST[:PORT]/REPO[:TAG]` with the version as the default tag. */
function pushTarget(text, version) {
  const ref = parseReference(text);
  if (ref.digest !== undefined) {
    throw new GcfsError(ErrorCode.InvalidReference, `--push ${text}: give a tag, not a digest`);
  }
  const tagged = /:[\w][\w.-]*$/.test(text.slice(text.lastIndexOf('/')));
  return { registry: ref.registry, repository: ref.repository, tag: tagged ? ref.tag : version };
}

async function push(built, text, insecure) {
  const target = pushTarget(text, built.description.version);
  const plainHttp = insecure || LOOPBACK.test(target.registry);
  const client = new RegistryClient({
    credentials: await CredentialStore.fromDockerConfig(),
    insecureHosts: plainHttp ? [target.registry] : [],
  });
  try {
    const digest = await pushImage(client, built.image, target);
    const pushed = `${target.registry}/${target.repository}:${target.tag}@${digest}`;
    log.info('Pushed', { image: pushed, plain_http: plainHttp });
    return pushed;
  } finally {
    await client.close();
  }
}

async function writeLayout(built, dir) {
  const target = resolve(dir);
  const existing = await readdir(target).catch(() => []);
  if (existing.length > 0) {
    throw new GcfsError(ErrorCode.AlreadyExists, `--oci-layout ${dir} is not empty`, {
      hint: 'give a new or empty directory',
    });
  }
  await cp(built.image.layoutDir, target, { recursive: true });
  log.info('Wrote the OCI layout', { dir: target, tag: built.description.version });
}

function sizeTable({ layers }) {
  const rows = layers.map(
    (l) =>
      `  ${l.name.padEnd(13)} ${(l.compressed / MB).toFixed(1).padStart(8)} MB ${(l.uncompressed / MB).toFixed(1).padStart(9)} MB  ${l.digest.slice(0, 19)}`,
  );
  const sum = (key) => layers.reduce((total, l) => total + l[key], 0);
  return [
    `  ${'layer'.padEnd(13)} ${'compressed'.padStart(11)} ${'uncompressed'.padStart(12)}`,
    ...rows,
    `  ${'total'.padEnd(13)} ${(sum('compressed') / MB).toFixed(1).padStart(8)} MB ${(sum('uncompressed') / MB).toFixed(1).padStart(9)} MB`,
  ].join('\n');
}

const args = parse();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
try {
  const repo = resolve(import.meta.dirname, '..');
  const built = await buildGcfsImage({
    repo,
    log: (line) => log.info(line),
    refreshDebian: args['refresh-debian'],
  });
  const { description } = built;
  console.error(
    `gcfs ${description.version} (${description.revision}), ${description.manifestDigest}\n${sizeTable(description)}`,
  );
  if (args['oci-layout'] !== undefined) await writeLayout(built, args['oci-layout']);
  const pushed = args.push === undefined ? undefined : await push(built, args.push, args.insecure);
  if (args.json) console.log(JSON.stringify({ ...description, pushed }, null, 2));
} catch (err) {
  log.error('build-image failed', { error: describeError(err) });
  process.exitCode = 1;
}
