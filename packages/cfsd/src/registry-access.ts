import { ErrorCode, GcfsError, isGcfsError, parsePlatformString } from '@gcfs/core';
import {
  clientForImage,
  type RegistryAccessOptions,
  type RegistryClient,
  type ResolvedImage,
} from '@gcfs/registry';

export type { RegistryAccessOptions };

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
    const client = clientForImage(image, credentials, this.options, {
      platform: parsePlatformString(platform || 'linux/amd64'),
    });
    try {
      return { resolved: await client.resolve(image), client };
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
