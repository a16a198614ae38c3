// What gcfsd's keychain socket adds to kubelet's image calls: PullImage of an image containerd
// already has (it still resolves the tag with the registry), straight to containerd's CRI
// socket against through gcfsd's keychain (--enable_pull_secret_keychain), which records the
// pull secret and forwards the request. Alternating calls, so both see the same noise. Then
// the cold start of a private image pulled through the keychain with its pull secret, against
// the same image public, taking turns (a warm cfsd, the medium workload).
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BUSYBOX_IMAGE, buildImage, PAUSE_IMAGE } from '@gcfs/image-builder';
import {
  CriClient,
  freePort,
  startCfsdProcess,
  startContainerd,
  startGcfsStack,
  startRegistry,
  tempDirFor,
} from '@gcfs/testkit';
import { cleanupList, coldStart, dropCaches, pushBuilt } from './cold-start.mjs';
import { median, resultsDir, spread, writeResult } from './lib.mjs';
import { buildWorkload } from './workloads.mjs';

const ALICE = { username: 'alice', password: 'Bench-Keychain-Passw0rd' };
/** Token auth: `private/*` is alice's alone, the rest anyone may pull. */
const PRIVATE_REGISTRY = {
  auth: 'token',
  users: [ALICE],
  acl: { 'private/*': { '*': ['alice'] }, '*': { pull: ['*'], push: ['alice'] } },
};

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
  const runs = quick ? 5 : 60;
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

/** One node's cold start with kubelet's image calls on gcfsd's keychain socket. */
async function keychainColdStart({ registry, cfsdAddress, sandboxImage, workload, image, auth }) {
  const node = cleanupList();
  try {
    const links = await tempDirFor(node, 'gcfs-bench-keychain-link-');
    // containerd's socket is known once coldStart starts it: gcfsd dials a link made then.
    const link = join(links.path, 'containerd.sock');
    const stack = await startGcfsStack({
      insecureRegistry: '127.0.0.1',
      cfsdAddress,
      minStreamedImageMb: 'default',
      keychain: { containerdAddress: link },
    });
    node.after(() => stack.stop());
    const run = await coldStart({
      registryHost: registry.host,
      sandboxImage,
      image,
      auth,
      ready: workload.ready,
      stack,
      cleanups: node,
      imageService: async (containerd) => {
        await symlink(containerd.address, link);
        const kubelet = new CriClient(stack.keychainSocket);
        node.after(() => kubelet.close());
        return kubelet;
      },
    });
    run.streamed = (await stack.metric('gcfsd_remote_snapshots_total')) > 0;
    return run;
  } finally {
    await node.run();
  }
}

/** Private through the keychain against public, in turns; medians of time to ready. */
export async function privateColdStarts({ quick }) {
  const runs = quick ? 1 : 5;
  const cleanups = cleanupList();
  try {
    const registry = await startRegistry(PRIVATE_REGISTRY);
    cleanups.after(() => registry.stop());
    const work = await tempDirFor(cleanups, 'gcfs-bench-keychain-cold-');
    const workload = await buildWorkload('medium', { log: () => {} });
    const pause = await buildImage(PAUSE_IMAGE, { layoutDir: join(work.path, 'pause') });
    const sandboxImage = await pushBuilt(registry.host, pause, 'bench/pause', 'v1', ALICE);
    const images = {
      public: await pushBuilt(registry.host, workload.built, 'public/medium', 'v1', ALICE),
      private: await pushBuilt(registry.host, workload.built, 'private/medium', 'v1', ALICE),
    };
    const cfsdAddress = `127.0.0.1:${await freePort()}`;
    const cfsd = await startCfsdProcess({
      address: cfsdAddress,
      store: join(work.path, 'cfsd'),
      insecureRegistry: '127.0.0.1',
      logFile: join(work.path, 'cfsd.log'),
    });
    cleanups.after(() => cfsd.stop());
    const setup = { registry, cfsdAddress, sandboxImage, workload };
    // Unmeasured: cfsd indexes the layers (shared by both repositories) once.
    await keychainColdStart({ ...setup, image: images.private, auth: ALICE });
    const seconds = { public: [], private: [] };
    const streamed = { public: true, private: true };
    for (let i = 0; i < runs; i++) {
      for (const kind of i % 2 ? ['private', 'public'] : ['public', 'private']) {
        await dropCaches();
        const run = await keychainColdStart({
          ...setup,
          image: images[kind],
          auth: kind === 'private' ? ALICE : undefined,
        });
        seconds[kind].push(run.seconds);
        streamed[kind] &&= run.streamed;
      }
    }
    return {
      runs,
      public_s: median(seconds.public),
      private_s: median(seconds.private),
      private_vs_public: median(seconds.private) / median(seconds.public),
      public_samples_s: seconds.public,
      private_samples_s: seconds.private,
      streamed,
      noisy: spread(seconds.public) > 0.5 || spread(seconds.private) > 0.5,
    };
  } finally {
    await cleanups.run();
  }
}

export async function main(options) {
  const r = { ...(await run(options)), cold_start: await privateColdStarts(options) };
  const file = await writeResult('keychain-proxy', r, resultsDir(options));
  const row = (name, x) =>
    `${name}: direct ${x.direct_ms.toFixed(1)} ms, through the keychain ${x.proxied_ms.toFixed(1)} ms, ` +
    `added ${x.added_ms.toFixed(1)} ms${x.noisy ? ' (noisy)' : ''}`;
  const c = r.cold_start;
  console.log(
    `keychain proxy, median of ${r.runs}: ${row('PullImage of a present image', r.pull)}; ${row('ListImages', r.list)}; ` +
      `cold start of the medium image, median of ${c.runs}: private through the keychain ${c.private_s.toFixed(2)} s, ` +
      `public ${c.public_s.toFixed(2)} s, ${c.private_vs_public.toFixed(2)}x${c.noisy ? ' (noisy)' : ''}, streamed ${JSON.stringify(c.streamed)} -> ${file}`,
  );
}
