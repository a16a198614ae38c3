import { type Digest, ErrorCode, GcfsError, Limits, parseDigest, quote } from '@gcfs/core';

/** An image reference, normalized: registry and repository always set, tag and/or digest. */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's distribution API. */
export const DOCKER_HUB_API = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', DOCKER_HUB_API]);

// The grammar of github.com/distribution/reference. Every pattern is anchored and linear
// (the ReDoS audit test checks them), and the text is bounded before any of them runs.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// Host names: labels of letters, digits and inner hyphens, joined by dots; or [IPv6]; a port.
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^\w[\w.-]{0,127}$/;

function invalid(text: string, problem: string, hint?: string): never {
  throw new GcfsError(
    ErrorCode.InvalidReference,
    `invalid image reference ${quote(text)}: ${problem}`,
    hint === undefined ? {} : { hint },
  );
}

/** The canonical registry name: Docker Hub's aliases all become docker.io. */
export function normalizeRegistry(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/** The host serving the distribution API of a registry name. */
export function registryApiHost(registry: string): string {
  return normalizeRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

// Docker's rule: the first component is a registry when it looks like a host
// (has a dot or a port, or is localhost, or has upper case letters).
function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return [DOCKER_HUB, name];
  }
  return [first, name.slice(slash + 1)];
}

/**
 * Parse `name[:tag][@digest]` with Docker Hub defaults: `docker.io` as the registry,
 * `library/` for single-component names, `latest` when neither tag nor digest is given.
 */
export function parseReference(text: string): ImageReference {
  if (text.length > Limits.reference) {
    invalid(
      text,
      `longer than ${Limits.reference} characters`,
      'the distribution spec allows 255 for the name',
    );
  }
  if (text === '' || text !== text.trim()) invalid(text, 'empty or surrounded by spaces');
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (err) {
      throw new GcfsError(ErrorCode.InvalidReference, `invalid image reference ${quote(text)}`, {
        cause: err,
      });
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      invalid(text, `bad tag ${quote(tag)}`, `tags are [A-Za-z0-9_.-], at most ${Limits.tag}`);
  }
  const [domain, path] = splitDomain(rest);
  if (!DOMAIN.test(domain)) invalid(text, `bad registry host ${quote(domain)}`);
  const registry = normalizeRegistry(domain);
  const components = path.split('/');
  for (const component of components) {
    if (!PATH_COMPONENT.test(component)) {
      invalid(
        text,
        `bad repository component ${quote(component)}`,
        'repository names are lowercase letters, digits and separators (. _ __ -) between them',
      );
    }
  }
  const repository = registry === DOCKER_HUB && components.length === 1 ? `library/${path}` : path;
  if (registry.length + 1 + repository.length > Limits.name) {
    invalid(text, `name longer than ${Limits.name} characters`);
  }
  return new ImageReference(
    registry,
    repository,
    tag ?? (digest === undefined ? 'latest' : undefined),
    digest,
  );
}

/** A parsed reference; `String(ref)` prints the normalized form. */
export class ImageReference implements Reference {
  readonly registry: string;
  readonly repository: string;
  // `declare`: absent rather than undefined own properties when not given.
  declare readonly tag?: string;
  declare readonly digest?: Digest;

  constructor(registry: string, repository: string, tag?: string, digest?: Digest) {
    this.registry = registry;
    this.repository = repository;
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
  }

  toString(): string {
    return formatReference(this);
  }
}

/** Accept either form, so that callers may pass strings or parsed references. */
export function toReference(ref: Reference | string): ImageReference {
  if (typeof ref === 'string') return parseReference(ref);
  return parseReference(formatReference(ref));
}

/** The normalized text form: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  const name = `${normalizeRegistry(ref.registry)}/${ref.repository}`;
  return `${name}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The same reference pinned to a digest (the tag is kept for display). */
export function withDigest(ref: Reference, digest: Digest): ImageReference {
  return new ImageReference(ref.registry, ref.repository, ref.tag, digest);
}
