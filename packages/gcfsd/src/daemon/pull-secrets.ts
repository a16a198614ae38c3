// Which registry credentials an image is registered with: the pod's own pull secret that the
// keychain recorded for the image's repository (--enable_pull_secret_keychain, see
// keychain/), then GKE's pull-secret flags (`--add_pull_secret` for the images it names,
// `--test_pull_secret` for any image), then the node's Docker config.json, else anonymous.
// The keychain comes first because it is what containerd itself pulled that image with.
// Every secret is registered for redaction as soon as it is read, so no log line or error
// can carry it.

import { readFile } from 'node:fs/promises';
import { ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import { type Credential, type CredentialSource, CredentialStore, parseReference } from '@gcfs/registry';

/** The user names GCR and Artifact Registry accept with each kind of GKE pull secret. */
export const PULL_SECRET_KINDS = ['oauth2accesstoken', '_json_key', '_json_key_base64'] as const;
export type PullSecretKind = (typeof PULL_SECRET_KINDS)[number];

/** `--add_pull_secret`, parsed: the credential for images under `scope`. */
export interface ImagePullSecret {
  /** `registry/repository` prefix (or a bare registry host) the secret is for. */
  scope: string;
  credential: Credential;
}

function badSecret(flag: string, problem: string): GcfsError {
  // The problem never quotes the value: it is a secret.
  return new GcfsError(ErrorCode.InvalidFlag, `--${flag}: ${problem}`, {
    hint: `expected ${PULL_SECRET_KINDS.map((kind) => `<image>,[file:]${kind}:<value>`).join(', ')}`,
  });
}

/** `registry/repository` of a reference, or the host alone when `text` names only a registry. */
function imageScope(text: string): string {
  if (!text.includes('/') && (/[.:]/.test(text) || text === 'localhost')) return text.toLowerCase();
  const ref = parseReference(text);
  return `${ref.registry}/${ref.repository}`;
}

function checkValue(kind: PullSecretKind, value: string): void {
  if (value === '') throw badSecret('add_pull_secret', `empty ${kind} value`);
  if (kind === 'oauth2accesstoken') return;
  const json = kind === '_json_key_base64' ? Buffer.from(value, 'base64').toString('utf8') : value;
  try {
    JSON.parse(json);
  } catch {
    throw badSecret('add_pull_secret', `the ${kind} value is not a JSON key`);
  }
}

/**
 * Parse `<image>,[file:]<kind>:<value>`. With `file:`, the value is the path of a file
 * holding the secret (one trailing newline ignored), read now.
 */
export async function parseAddPullSecret(text: string): Promise<ImagePullSecret> {
  const comma = text.indexOf(',');
  if (comma <= 0) throw badSecret('add_pull_secret', 'no `<image>,` before the secret');
  let scope: string;
  try {
    scope = imageScope(text.slice(0, comma).trim());
  } catch (err) {
    throw new GcfsError(ErrorCode.InvalidFlag, '--add_pull_secret: bad image name', { cause: err });
  }
  let rest = text.slice(comma + 1);
  const fromFile = rest.startsWith('file:');
  if (fromFile) rest = rest.slice('file:'.length);
  const colon = rest.indexOf(':');
  const kind = rest.slice(0, colon) as PullSecretKind;
  if (colon <= 0 || !PULL_SECRET_KINDS.includes(kind)) {
    throw badSecret('add_pull_secret', 'unknown secret kind');
  }
  let value = rest.slice(colon + 1);
  if (fromFile) {
    const path = value;
    try {
      value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new GcfsError(ErrorCode.InvalidFlag, `--add_pull_secret: cannot read the ${kind} file ${path}`, {
        cause: err,
      });
    }
  }
  registerSecret(value);
  checkValue(kind, value);
  return { scope, credential: { username: kind, password: value } };
}

/** `{username}:{password}` of --test_pull_secret. */
export function parseTestPullSecret(text: string): Credential {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw new GcfsError(ErrorCode.InvalidFlag, '--test_pull_secret: expected {username}:{password}');
  }
  const password = text.slice(colon + 1);
  registerSecret(password);
  return { username: text.slice(0, colon), password };
}

export interface PullSecretFlags {
  add_pull_secret: string;
  test_pull_secret: string;
}

/** Where a credential came from, for logs (never the credential itself). */
export type CredentialOrigin =
  | 'keychain'
  | 'add_pull_secret'
  | 'test_pull_secret'
  | 'docker_config'
  | 'anonymous';

/** The credentials the keychain recorded, per image (RecordedCredentials has it). */
export interface KeychainSource {
  get(image: string): Credential | undefined;
}

export class PullSecrets {
  readonly #imageSecret: ImagePullSecret | undefined;
  readonly #testSecret: Credential | undefined;
  readonly #dockerConfig: CredentialSource | undefined;
  readonly #keychain: KeychainSource | undefined;

  constructor(
    imageSecret?: ImagePullSecret,
    testSecret?: Credential,
    dockerConfig?: CredentialSource,
    keychain?: KeychainSource,
  ) {
    this.#imageSecret = imageSecret;
    this.#testSecret = testSecret;
    this.#dockerConfig = dockerConfig;
    this.#keychain = keychain;
  }

  /**
   * From gcfsd's flags, a Docker config.json (`$DOCKER_CONFIG`, else ~/.docker, when present)
   * and the keychain when it is enabled.
   */
  static async fromFlags(
    flags: PullSecretFlags,
    dockerConfigPath?: string,
    keychain?: KeychainSource,
  ): Promise<PullSecrets> {
    return new PullSecrets(
      flags.add_pull_secret === '' ? undefined : await parseAddPullSecret(flags.add_pull_secret),
      flags.test_pull_secret === '' ? undefined : parseTestPullSecret(flags.test_pull_secret),
      await CredentialStore.fromDockerConfig(dockerConfigPath),
      keychain,
    );
  }

  /** The credential to register `image` with, and where it came from. */
  async forImage(image: string): Promise<{ credential: Credential; origin: CredentialOrigin }> {
    const recorded = this.#keychain?.get(image);
    if (recorded !== undefined) return { credential: recorded, origin: 'keychain' };
    const ref = parseReference(image);
    const name = `${ref.registry}/${ref.repository}`;
    const scope = this.#imageSecret?.scope;
    if (scope !== undefined && (name === scope || name.startsWith(`${scope}/`) || ref.registry === scope)) {
      return { credential: this.#imageSecret!.credential, origin: 'add_pull_secret' };
    }
    if (this.#testSecret) return { credential: this.#testSecret, origin: 'test_pull_secret' };
    const fromConfig = await this.#dockerConfig?.get(ref.registry);
    if (fromConfig) return { credential: fromConfig, origin: 'docker_config' };
    return { credential: {}, origin: 'anonymous' };
  }
}
