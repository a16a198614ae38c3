import { buildImage, type Entry, type FileContent, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { type Credential, RegistryClient } from '@gcfs/registry';
import { makeTempDir } from '@gcfs/testkit';

export { BUSYBOX_IMAGE, busyboxEntries, PAUSE_IMAGE } from '@gcfs/image-builder';

/** A regular file entry, 0644. */
export const file = (path: string, content: FileContent): Entry => ({
  type: 'file',
  path,
  mode: 0o644,
  content,
});
/** A directory entry, 0755. */
export const dir = (path: string): Entry => ({ type: 'dir', path, mode: 0o755 });

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
