import { ErrorCode, GcfsError, isGcfsError, parsePlatformString } from '@gcfs/core';
import {
  type Credential,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedImage,
  toReference,
} from '@gcfs/registry';

export interface RegistryAccessOptions {
  /** containerd certs.d directory with `<host>/hosts.toml` mirror configuration. */
  hostsDir?: string;
  insecureHosts?: string[];
}

export interface CallerCredentials {
  username?: string;
  password?: string;
  identityToken?: string;
}

/**
 * Checks with the registry, using only the caller's own credentials, that the caller may
 * pull an image: resolving its manifest is the registry's own pull check. The client that
 * did it is handed back so the same credentials fetch the layers to index.
 */
export class RegistryAccess {
  constructor(private readonly options: RegistryAccessOptions) {}

  async resolve(
    image: string,
    credentials: CallerCredentials,
    platform: string,
  ): Promise<{ resolved: ResolvedImage; client: RegistryClient }> {
    const reference = toReference(image);
    const credential: Credential = {};
    if (credentials.username) credential.username = credentials.username;
    if (credentials.password) credential.password = credentials.password;
    if (credentials.identityToken) credential.identityToken = credentials.identityToken;
    const clientOptions: RegistryClientOptions = {
      credentials: Object.keys(credential).length > 0 ? { [reference.registry]: credential } : {},
      platform: parsePlatformString(platform || 'linux/amd64'),
    };
    if (this.options.hostsDir) clientOptions.hostsDir = this.options.hostsDir;
    if (this.options.insecureHosts) clientOptions.insecureHosts = this.options.insecureHosts;
    const client = new RegistryClient(clientOptions);
    try {
      return { resolved: await client.resolve(reference), client };
    } catch (err) {
      await client.close();
      throw err;
    }
  }
}

/** Whether an error from resolving means the image is fine but cannot be streamed. */
export function isUnstreamableImage(err: unknown): boolean {
  return (
    isGcfsError(err) &&
    (err.code === ErrorCode.UnsupportedSchema ||
      err.code === ErrorCode.UnsupportedMediaType ||
      err.code === ErrorCode.PlatformNotFound)
  );
}

export function notStreamable(reason: string): GcfsError {
  return new GcfsError(ErrorCode.NotStreamable, reason);
}
