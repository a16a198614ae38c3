import { buildImage, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { type Credential, RegistryClient } from '@gcfs/registry';
import { makeTempDir } from '@gcfs/testkit';

export { BUSYBOX_IMAGE, busyboxEntries, PAUSE_IMAGE } from '@gcfs/image-builder';

/**
 * Build `spec` and push it to a plain-HTTP registry at `host` (as `pusher` when the registry
 * wants credentials); returns `host/repository:tag`.
 */
export async function pushTestImage(
  host: string,
  repository: string,
  spec: ImageSpec,
  tag = 'v1',
  pusherCredential?: Credential,
): Promise<string> {
  const layout = await makeTempDir('gcfs-cri-image-');
  const pusher = new RegistryClient({
    // The registry, and its token server on another port of the same host.
    insecureHosts: [host, new URL(`http://${host}`).hostname],
    ...(pusherCredential && { credentials: { [host]: pusherCredential } }),
  });
  try {
    const built = await buildImage(spec, { layoutDir: layout.path });
    await pushImage(pusher, built, { registry: host, repository, tag });
    return `${host}/${repository}:${tag}`;
  } finally {
    await pusher.close();
    await layout.cleanup();
  }
}
