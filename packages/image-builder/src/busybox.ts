import type { Entry, ImageSpec } from './spec.js';

// Images that run containers, made offline from Debian's busybox-static (scripts/setup
// installs it): a sandbox (pause) image and a small shell image, for tests and the demo.

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
