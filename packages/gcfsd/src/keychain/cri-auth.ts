// CRI's AuthConfig (PullImageRequest.auth, what kubelet takes from the pod's image pull
// secrets) read as containerd 1.6's CRI reads it (ParseAuth in pkg/cri/server/image_pull.go),
// so that gcfsd streams with exactly the credential containerd pulls with:
// - an auth whose server_address names another host than the image's registry is ignored;
// - username (+ password), else identity_token (an OAuth2 refresh token), else `auth`
//   (base64 of `user:password`);
// - registry_token is ignored: containerd 1.6 does not use it either ("TODO: Support
//   RegistryToken"), so a pull that only has one is anonymous for both.
// Every secret is registered for redaction, the ignored ones included.

import { ErrorCode, GcfsError, registerSecret } from '@gcfs/core';
import type { cri } from '@gcfs/proto';
import { type Credential, normalizeRegistry, parseReference } from '@gcfs/registry';

/** The host of a server_address (`https://host:port/v1/` or `host:port`), normalized. */
function serverHost(address: string): string {
  const withoutScheme = address.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  return normalizeRegistry(withoutScheme.split('/')[0] ?? withoutScheme);
}

function decodeAuth(auth: string): Credential {
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) {
    // As containerd answers it; the value itself is never quoted.
    throw new GcfsError(ErrorCode.InvalidArgument, 'invalid decoded auth: no `:` between user and password');
  }
  // containerd trims the NUL padding some tools leave in the password (strings.Trim); a
  // scan, since a regular expression for the trailing run backtracks on hostile input.
  let start = colon + 1;
  let end = decoded.length;
  while (start < end && decoded[start] === '\0') start++;
  while (end > start && decoded[end - 1] === '\0') end--;
  const password = decoded.slice(start, end);
  registerSecret(password);
  return { username: decoded.slice(0, colon), password };
}

/** The credential containerd pulls `image` with, given CRI's auth; undefined: anonymous. */
export function credentialFromCriAuth(
  image: string,
  auth: cri.AuthConfig | undefined,
): Credential | undefined {
  if (auth === undefined) return undefined;
  for (const secret of [auth.password, auth.auth, auth.identityToken, auth.registryToken])
    registerSecret(secret);
  if (auth.serverAddress !== '' && serverHost(auth.serverAddress) !== parseReference(image).registry) {
    return undefined;
  }
  if (auth.username !== '') return { username: auth.username, password: auth.password };
  if (auth.identityToken !== '') return { identityToken: auth.identityToken };
  if (auth.auth !== '') return decodeAuth(auth.auth);
  return undefined;
}
