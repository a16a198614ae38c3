export { type AuthTarget, type Challenge, parseWwwAuthenticate, repositoryScope } from './auth.js';
export {
  type BlobReadOptions,
  type ManifestResponse,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedImage,
} from './client.js';
export {
  type Credential,
  type CredentialSource,
  CredentialStore,
  type CredentialStoreOptions,
  type DockerConfig,
  defaultDockerConfigPath,
} from './credentials.js';
export type * from './events.js';
export {
  type Capability,
  type Endpoint,
  type HostsOptions,
  isInsecureHost,
  loadEndpoints,
  parseHostsToml,
} from './hosts.js';
export { clientForImage, type RegistryAccessOptions, registryAccess } from './image-client.js';
export {
  type ImageIndex,
  type ImageManifest,
  MANIFEST_ACCEPT,
  manifestKind,
  parseImageIndex,
  parseImageManifest,
  selectPlatform,
} from './manifest.js';
export {
  DOCKER_HUB,
  DOCKER_HUB_API,
  formatReference,
  ImageReference,
  normalizeRegistry,
  parseReference,
  type Reference,
  registryApiHost,
  toReference,
  withDigest,
} from './reference.js';
export { isRetryableNetworkError } from './transport.js';
