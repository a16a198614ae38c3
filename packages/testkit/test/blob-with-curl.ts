import { type Digest, digestOf } from '@gcfs/core';
import { type CurlResult, curl } from '../src/index.js';

/** Extra curl arguments carrying credentials: `['-u', 'user:pass']` or a Bearer header. */
export type AuthArgs = readonly string[];

export function bearer(token: string): AuthArgs {
  return ['-H', `Authorization: Bearer ${token}`];
}

/** Push `data` as a blob of `repo` with the two-step (POST, PUT) upload; returns the final response. */
export async function pushBlob(
  registryUrl: string,
  repo: string,
  data: Buffer,
  auth: AuthArgs = [],
): Promise<{ digest: Digest; start: CurlResult; finish?: CurlResult }> {
  const digest = digestOf(data);
  const start = await curl([...auth, '-X', 'POST', `${registryUrl}/v2/${repo}/blobs/uploads/`]);
  if (start.status !== 202) return { digest, start };
  const location = new URL(start.headers.location ?? '', registryUrl);
  location.searchParams.set('digest', digest);
  const finish = await curl(
    [
      ...auth,
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/octet-stream',
      '--data-binary',
      `@-`,
      location.href,
    ],
    { input: data },
  );
  return { digest, start, finish };
}

export function pullBlob(registryUrl: string, repo: string, digest: string, auth: AuthArgs = []) {
  return curl([...auth, `${registryUrl}/v2/${repo}/blobs/${digest}`]);
}
