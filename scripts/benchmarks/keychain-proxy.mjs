// What gcfsd's keychain socket adds to kubelet's image calls: PullImage of an image containerd
// already has (it still resolves the tag with the registry), straight to containerd's CRI
// socket against through gcfsd's keychain (--enable_pull_secret_keychain), which records the
// pull secret and forwards the request. Alternating calls, so both see the same noise.
import { join } from 'node:path';
import { BUSYBOX_IMAGE, buildImage } from '@gcfs/image-builder';
import { CriClient, startContainerd, startGcfsStack, startRegistry, tempDirFor } from '@gcfs/testkit';
import { cleanupList, pushBuilt } from './cold-start.mjs';
import { median, resultsDir, spread, writeResult } from './lib.mjs';

/** A pull secret as kubelet sends it: the registry wants none, containerd ignores it then. */
const AUTH = { username: 'bench', password: 'bench-secret-value' };

async function ms(call) {
  const t0 = performance.now();
  await call();
  return performance.now() - t0;
}

/** Medians of `runs` alternating calls of `call(client)` on each client, and the samples. */
async function compare(direct, proxied, runs, call) {
  const directMs = [];
  const proxiedMs = [];
  for (let i = 0; i < runs; i++) {
    const order = [
      async () => directMs.push(await ms(() => call(direct))),
      async () => proxiedMs.push(await ms(() => call(proxied))),
    ];
    if (i % 2) order.reverse();
    for (const step of order) await step();
  }
  return {
    direct_ms: median(directMs),
    proxied_ms: median(proxiedMs),
    added_ms: median(proxiedMs) - median(directMs),
    direct_samples: directMs,
    proxied_samples: proxiedMs,
    noisy: spread(directMs) > 0.5 || spread(proxiedMs) > 0.5,
  };
}

export async function run({ quick }) {
  const runs = quick ? 5 : 20;
  const cleanups = cleanupList();
  try {
    const registry = await startRegistry();
    cleanups.after(() => registry.stop());
    const work = await tempDirFor(cleanups, 'gcfs-bench-keychain-');
    const built = await buildImage(BUSYBOX_IMAGE, { layoutDir: join(work.path, 'layout') });
    const image = await pushBuilt(registry.host, built, 'bench/busybox');
    // containerd's own snapshotter: the proxy sits in front of CRI's image service only.
    const containerd = await startContainerd({ registryHost: registry.host, sandboxImage: image });
    cleanups.after(() => containerd.stop());
    const stack = await startGcfsStack({
      insecureRegistry: '127.0.0.1',
      downloader: false,
      keychain: { containerdAddress: containerd.address },
    });
    cleanups.after(() => stack.stop());
    const direct = new CriClient(containerd.address);
    const proxied = new CriClient(stack.keychainSocket);
    cleanups.after(() => {
      direct.close();
      proxied.close();
    });
    // Present from now on; the first call through each socket opens its connection.
    for (const cri of [direct, proxied]) await cri.pullImage(image, 60_000, AUTH);
    return {
      benchmark: 'keychain-proxy',
      runs,
      pull: await compare(direct, proxied, runs, (cri) => cri.pullImage(image, 60_000, AUTH)),
      // Forwarding alone: no registry, no recording.
      list: await compare(direct, proxied, runs, (cri) => cri.listImages()),
      note: 'PullImage (with a pull secret) of an image containerd 1.6 already has: straight to its CRI socket vs through gcfsd --enable_pull_secret_keychain; the registry is local',
    };
  } finally {
    await cleanups.run();
  }
}

export async function main(options) {
  const r = await run(options);
  const file = await writeResult('keychain-proxy', r, resultsDir(options));
  const row = (name, x) =>
    `${name}: direct ${x.direct_ms.toFixed(1)} ms, through the keychain ${x.proxied_ms.toFixed(1)} ms, ` +
    `added ${x.added_ms.toFixed(1)} ms${x.noisy ? ' (noisy)' : ''}`;
  console.log(
    `keychain proxy, median of ${r.runs}: ${row('PullImage of a present image', r.pull)}; ${row('ListImages', r.list)} -> ${file}`,
  );
}
