// One cold start through containerd's CRI, as kubelet does it: a fresh containerd (root,
// state, content store all new), PullImage, RunPodSandbox (the pause image is pulled there
// too), CreateContainer, StartContainer, then the container's log is watched for its ready
// line. With `stack` the CRI snapshotter is gcfs (GKE's configuration), without it
// containerd's own overlayfs (a full pull). Used by scripts/demo and the cold-start benchmark.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { pushImage } from '@gcfs/image-builder';
import { RegistryClient } from '@gcfs/registry';
import { CriClient, readCriLog, startContainerd, tempDirFor } from '@gcfs/testkit';

const execFileP = promisify(execFile);

/** Cleanups of what is running, last started first. */
export function cleanupList() {
  const fns = [];
  return {
    after: (fn) => fns.push(fn),
    async run() {
      for (const fn of fns.splice(0).reverse()) await fn();
    },
  };
}

/** Push a built image to the plain-HTTP registry at `host` (as `user`, if given); its reference. */
export async function pushBuilt(host, built, repository, tag = 'v1', user = undefined) {
  const pusher = new RegistryClient({
    // The host without its port: a token-auth registry's token server listens beside it.
    insecureHosts: [host.replace(/:\d+$/, '')],
    ...(user && { credentials: { [host]: { username: user.username, password: user.password } } }),
  });
  try {
    await pushImage(pusher, built, { registry: host, repository, tag });
  } finally {
    await pusher.close();
  }
  return `${host}/${repository}:${tag}`;
}

/** The first log line matching `ready`, polled as `kubectl logs -f` would show it. */
async function readyLine(logFile, ready, timeoutMs) {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const lines = await readCriLog(logFile).catch(() => []);
    const line = lines.find((l) => ready.test(l));
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no line matching ${ready} in the container's log within ${timeoutMs / 1000} s`);
}

/**
 * Wait until every layer gcfsd streams is local (or given up): its background downloads are
 * over. None when the images were pulled normally. False when `timeoutMs` passed first.
 */
export async function untilLayersLocal(stack, timeoutMs) {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const known = await stack.metric('gcfsd_layers{');
    const local = await stack.metric('gcfsd_layers{', 'state="local"');
    if (known === local + (await stack.metric('gcfsd_layers{', 'state="failed"'))) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** Write back what the previous run left dirty (GiBs of layers), then drop the page cache. */
export async function dropCaches() {
  await execFileP('sync');
  await writeFile('/proc/sys/vm/drop_caches', '3\n').catch(() => {});
}

/** Peak resident set of a process (VmHWM), in bytes; 0 when it is gone. */
export async function peakRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kib === undefined ? 0 : Number(kib) * 1024;
}

/**
 * @param {object} o
 * @param {string} o.registryHost  host:port containerd pulls from (plain HTTP)
 * @param {string} o.sandboxImage
 * @param {string} o.image
 * @param {RegExp} [o.ready]  the app's ready line (default: any line)
 * @param {{ snapshotterSocket: string }} [o.stack]  gcfs; absent: overlayfs
 * @param {() => Promise<number>} [o.bytes]  bytes received from the registry/cfsd so far
 * @param {{ after(fn): void }} o.cleanups  where the containerd's stop goes
 */
export async function coldStart(o) {
  const containerd = await startContainerd({
    registryHost: o.registryHost,
    sandboxImage: o.sandboxImage,
    discardUnpackedLayers: true,
    ...(o.stack && { snapshotter: 'gcfs', proxySnapshotters: { gcfs: o.stack.snapshotterSocket } }),
  });
  const cri = new CriClient(containerd.address);
  const logs = await tempDirFor(o.cleanups, 'gcfs-cold-start-logs-');
  o.cleanups.after(async () => {
    cri.close();
    await containerd.stop();
  });
  // kubelet's image calls may go elsewhere (gcfsd's keychain socket), with a pull secret.
  const images = o.imageService ? await o.imageService(containerd) : cri;
  const bytesAtStart = (await o.bytes?.()) ?? 0;
  const t0 = performance.now();
  await images.pullImage(o.image, undefined, o.auth);
  const pulledSeconds = (performance.now() - t0) / 1000;
  const pod = await cri.runPodSandbox({ name: 'cold-start', logDirectory: logs.path });
  const container = await cri.createContainer(pod, { name: 'app', image: o.image });
  await cri.startContainer(container.id);
  const output = await readyLine(container.logFile, o.ready ?? /./, 900_000);
  const seconds = (performance.now() - t0) / 1000;
  const bytesBeforeReady = ((await o.bytes?.()) ?? 0) - bytesAtStart;
  return { seconds, pulledSeconds, output, t0, bytesAtStart, bytesBeforeReady };
}
