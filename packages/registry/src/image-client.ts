import { registerSecret } from '@gcfs/core';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import type { Credential } from './credentials.js';
import { type Reference, toReference } from './reference.js';

/** How a process reaches registries: containerd's certs.d directory and plain-HTTP hosts. */
export interface RegistryAccessOptions {
  /** containerd certs.d directory with `<host>/hosts.toml` mirror configuration. */
  hostsDir?: string;
  insecureHosts?: string[];
}

/** The access every daemon configures with --registry_hosts_dir and --insecure_registry. */
export function registryAccess(flags: {
  registry_hosts_dir: string;
  insecure_registry: readonly string[];
}): RegistryAccessOptions {
  return {
    ...(flags.registry_hosts_dir ? { hostsDir: flags.registry_hosts_dir } : {}),
    insecureHosts: [...flags.insecure_registry],
  };
}

/**
 * A client that presents `credential` to the image's registry alone (none: anonymous), the
 * way every daemon acts for one caller's image. The secrets are registered for redaction.
 */
export function clientForImage(
  image: Reference | string,
  credential: Credential,
  access: RegistryAccessOptions,
  options: Pick<RegistryClientOptions, 'platform'> = {},
): RegistryClient {
  registerSecret(credential.password);
  registerSecret(credential.identityToken);
  const given: Credential = {};
  if (credential.username) given.username = credential.username;
  if (credential.password) given.password = credential.password;
  if (credential.identityToken) given.identityToken = credential.identityToken;
  return new RegistryClient({
    ...options,
    credentials: Object.keys(given).length > 0 ? { [toReference(image).registry]: given } : {},
    ...(access.hostsDir ? { hostsDir: access.hostsDir } : {}),
    ...(access.insecureHosts ? { insecureHosts: access.insecureHosts } : {}),
  });
}
