import { buildImage, type Entry, type ImageSpec, pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { makeTempDir } from '@gcfs/testkit';

// Images for tests that run containers through CRI, made offline from Debian's busybox-static
// (scripts/setup installs it): a sandbox (pause) image and a small shell image.

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'sleep', 'test', 'true', 'false', 'env', 'find', 'stat', 'wc'];

/** A root with /bin/busybox, the applets above as symlinks, and the dirs runc mounts onto. */
export function busyboxEntries(): Entry[] {
  return [
    ...['bin', 'dev', 'etc', 'proc', 'sys', 'tmp'].map((path): Entry => ({ type: 'dir', path, mode: 0o755 })),
    { type: 'file', path: 'bin/busybox', mode: 0o755, content: { path: BUSYBOX } },
    ...APPLETS.map((name): Entry => ({ type: 'symlink', path: `bin/${name}`, target: 'busybox' })),
  ];
}

const ENV = ['PATH=/bin'];

/** Sleeps until signalled, as the pause container does. */
export const PAUSE_IMAGE: ImageSpec = {
  config: {
    env: ENV,
    entrypoint: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; sleep 2147483647 & wait"],
  },
  layers: [{ entries: busyboxEntries() }],
};

/** busybox with a shell; containers give their own command. */
export const BUSYBOX_IMAGE: ImageSpec = {
  config: { env: ENV, cmd: ['/bin/sh'] },
  layers: [{ entries: busyboxEntries() }],
};

/** Build `spec` and push it to a plain-HTTP registry at `host`; returns `host/repository:tag`. */
export async function pushTestImage(
  host: string,
  repository: string,
  spec: ImageSpec,
  tag = 'v1',
): Promise<string> {
  const layout = await makeTempDir('gcfs-cri-image-');
  const pusher = new RegistryClient({ insecureHosts: [host] });
  try {
    const built = await buildImage(spec, { layoutDir: layout.path });
    await pushImage(pusher, built, { registry: host, repository, tag });
    return `${host}/${repository}:${tag}`;
  } finally {
    await pusher.close();
    await layout.cleanup();
  }
}
